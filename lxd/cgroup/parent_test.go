package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/testutil"
)

func TestParentFor(t *testing.T) {
	if got := ParentFor("/var/lib/berth/"); got != DefaultParent {
		t.Errorf("default dir: %q", got)
	}

	a, b := ParentFor("/tmp/bt-1"), ParentFor("/tmp/bt-2")
	if a == b || !strings.HasPrefix(a, DefaultParent+"-") || len(a) != len(DefaultParent)+9 {
		t.Errorf("other dirs: %q, %q", a, b)
	}

	if ParentFor("/tmp/bt-1/") != a {
		t.Error("the same dir spelled differently gets another parent")
	}

	g, err := New("c1", Layout{V1: map[string]string{"memory": "/m"}, Unified: "/u", Parent: a})
	if err != nil {
		t.Fatal(err)
	}

	v1 := g.(*v1Group)
	if v1.dirs["memory"] != "/m/"+a+"/c1" || v1.unified != "/u/"+a+"/c1" {
		t.Errorf("group dirs %v, %s", v1.dirs, v1.unified)
	}

	if UnitName(a, "c1") != a+"-c1.scope" || UnitName("", "c1") != "berth-c1.scope" {
		t.Errorf("unit names %s, %s", UnitName(a, "c1"), UnitName("", "c1"))
	}
}

func TestRemoveParent(t *testing.T) {
	testutil.RequireRoot(t, "manage cgroups")

	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}

	l.Parent = ParentFor(t.TempDir())

	g, err := New("c1", l)
	if err != nil {
		t.Fatal(err)
	}

	err = g.Create()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove(); _ = l.RemoveParent() })

	err = l.RemoveParent()
	if err == nil || !strings.Contains(err.Error(), l.Parent) {
		t.Fatalf("removing a parent that holds a container: %v, want an error naming it", err)
	}

	err = g.Remove()
	if err != nil {
		t.Fatal(err)
	}

	err = l.RemoveParent()
	if err != nil {
		t.Fatal(err)
	}

	for _, m := range append([]string{l.Unified}, l.V1["memory"], l.V1["pids"]) {
		_, err := os.Stat(filepath.Join(m, l.Parent))
		if m != "" && !os.IsNotExist(err) {
			t.Errorf("%s/%s still there (%v)", m, l.Parent, err)
		}
	}
}
