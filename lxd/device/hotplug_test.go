package device

import (
	"strings"
	"testing"
)

func TestChanges(t *testing.T) {
	old := map[string]map[string]string{"a": {"type": "disk", "path": "/a"}, "b": {"type": "proxy"}}
	new := map[string]map[string]string{"a": {"type": "disk", "path": "/a2"}, "c": {"type": "none"}}
	removed, added := changes(old, new)
	if strings.Join(removed, ",") != "a,b" || strings.Join(added, ",") != "a,c" {
		t.Fatalf("removed %v added %v", removed, added)
	}

	err := CheckHotplug(old, map[string]map[string]string{"a": old["a"], "b": old["b"], "root": {"type": "disk", "path": "/"}})
	if err == nil || !strings.Contains(err.Error(), "requires restart") {
		t.Fatalf("adding a root disk live: %v", err)
	}
}
