package validate

import (
	"strings"
	"testing"
)

func TestInstanceName(t *testing.T) {
	good := []string{"c1", "a", "web-01", "A" + strings.Repeat("b", 62)}
	for _, n := range good {
		if err := InstanceName(n); err != nil {
			t.Errorf("InstanceName(%q) = %v, want nil", n, err)
		}
	}

	bad := []string{"", "1abc", "-a", "a-", "a_b", "a.b", "a b", "a/b", "a\nb", strings.Repeat("a", 64), "ü"}
	for _, n := range bad {
		if err := InstanceName(n); err == nil {
			t.Errorf("InstanceName(%q) = nil, want error", n)
		}
	}
}

func TestEntityName(t *testing.T) {
	if err := EntityName("profile", "default"); err != nil {
		t.Fatal(err)
	}

	for _, n := range []string{"", ".", "..", "a/b", "a\nb", strings.Repeat("x", 256)} {
		if err := EntityName("profile", n); err == nil {
			t.Errorf("EntityName(%q) = nil, want error", n)
		}
	}
}

func TestAliasName(t *testing.T) {
	for _, n := range []string{"debian/12", "a", "ubuntu/22.04/amd64"} {
		if err := AliasName(n); err != nil {
			t.Errorf("AliasName(%q) = %v", n, err)
		}
	}

	for _, n := range []string{"", "/a", "a/", "a//b", "a/../b", "a\nb"} {
		if err := AliasName(n); err == nil {
			t.Errorf("AliasName(%q) = nil, want error", n)
		}
	}
}
