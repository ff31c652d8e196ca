package cgroup

import (
	"strings"
	"testing"
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
