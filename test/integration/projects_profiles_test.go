package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/cgroup"
)

// TestLXCProjectProfiles: a project with features.profiles has profiles of its own. Its
// default profile is its own (a change there reaches only its instances, running ones
// too), the same profile name lives in two projects, the default project sees none of
// them, a profile name cannot spell another project's profile, and a project without
// the feature keeps using the default project's profiles.
func TestLXCProjectProfiles(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "p1", "-c", "features.profiles=true", "-c", "features.images=false")
	l.must("project", "create", "p2", "-c", "features.images=false") // features.profiles on by default, as LXD 5.0
	l.must("project", "create", "shared", "-c", "features.profiles=false", "-c", "features.images=false")
	t.Cleanup(func() {
		for _, p := range []string{"p1", "p2", "shared", "default"} {
			_, _ = l.run("delete", "-f", "c1", "--project", p)
		}

		for _, p := range []string{"p1", "p2"} {
			_, _ = l.run("profile", "delete", "web", "--project", p)
		}

		for _, p := range []string{"p1", "p2", "shared"} {
			_, _ = l.run("project", "delete", p)
		}
	})

	if out := l.must("project", "get", "p2", "features.profiles"); strings.TrimSpace(out) != "true" {
		t.Errorf("a new project's features.profiles = %q, want true", out)
	}

	// Own default profiles, and one name in two projects.
	for _, p := range []string{"p1", "p2"} {
		out := l.must("profile", "show", "default", "--project", p)
		if !strings.Contains(out, "project "+p) {
			t.Errorf("%s's default profile is not its own:\n%s", p, out)
		}

		l.must("profile", "create", "web", "--project", p)
		l.must("profile", "set", "web", "user.owner="+p, "--project", p)
	}

	for _, p := range []string{"p1", "p2"} {
		if out := l.must("profile", "get", "web", "user.owner", "--project", p); strings.TrimSpace(out) != p {
			t.Errorf("%s's web profile has user.owner=%q", p, out)
		}
	}

	if out, err := l.run("profile", "show", "web", "--project", "default"); err == nil {
		t.Errorf("the default project sees a project's profile:\n%s", out)
	}

	if out := l.must("profile", "list", "--project", "shared", "--format", "csv"); strings.Contains(out, "web") {
		t.Errorf("a project without features.profiles lists another's profiles:\n%s", out)
	}

	// p1's default profile limits memory: only p1's instance gets it, live too.
	l.must("launch", "debian/12", "c1", "--project", "p1")
	l.must("launch", "debian/12", "c1", "--project", "default")
	l.must("init", "debian/12", "c1", "--project", "shared")
	l.must("profile", "set", "default", "limits.memory=256MiB", "--project", "p1")

	for p, want := range map[string]string{"p1": "256MiB", "default": "", "shared": ""} {
		var inst struct {
			Profiles       []string          `json:"profiles"`
			ExpandedConfig map[string]string `json:"expanded_config"`
		}

		err := json.Unmarshal([]byte(l.must("query", "/1.0/instances/c1?project="+p)), &inst)
		if err != nil {
			t.Fatal(err)
		}

		if inst.ExpandedConfig["limits.memory"] != want || len(inst.Profiles) != 1 || inst.Profiles[0] != "default" {
			t.Errorf("c1 in %s: profiles %v, limits.memory %q, want [default] and %q", p, inst.Profiles, inst.ExpandedConfig["limits.memory"], want)
		}
	}

	// The running instance got the limit live: its memory cgroup says so (v1's
	// memory.limit_in_bytes, else cgroup2's memory.max); the default project's does not.
	if got := d.memoryLimit(t, "p1_c1"); got != "268435456" {
		t.Errorf("p1's c1 memory limit = %q, want 268435456", got)
	}

	if got := d.memoryLimit(t, "c1"); got == "268435456" {
		t.Errorf("the default project's c1 got p1's profile's limit")
	}

	// A profile name spelling another project's key is refused, not resolved.
	for _, p := range []string{"shared", "p2"} {
		out := l.fails("init", "debian/12", "c2", "--project", p, "-p", "p1/web")
		if !strings.Contains(out, "p1/web") {
			t.Errorf("profile p1/web from %s refused with:\n%s", p, out)
		}
	}

	// Features change only on empty projects.
	out := l.fails("project", "set", "p1", "features.profiles=false")
	if !strings.Contains(out, "empty projects") {
		t.Errorf("feature change with instances refused with:\n%s", out)
	}

	// Emptied, the feature goes off and its default profile with it; deletion too.
	l.must("delete", "-f", "c1", "--project", "p1")
	l.must("profile", "delete", "web", "--project", "p1")
	l.must("project", "set", "p1", "features.profiles=false")
	if out := l.must("profile", "show", "default", "--project", "p1"); strings.Contains(out, "project p1") {
		t.Errorf("p1 without features.profiles still has its own default profile:\n%s", out)
	}

	l.must("project", "delete", "p1")
	l.must("profile", "delete", "web", "--project", "p2")
	l.must("project", "delete", "p2")
}

// TestProfileKeyNotAName: a profile path spelling another project's key ("p1/web") is
// not that project's profile from any other project, for reads or writes.
func TestProfileKeyNotAName(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "p1", "-c", "features.images=false")
	l.must("project", "create", "other", "-c", "features.profiles=false", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("profile", "delete", "web", "--project", "p1")
		_, _ = l.run("project", "delete", "p1")
		_, _ = l.run("project", "delete", "other")
	})

	l.must("profile", "create", "web", "--project", "p1")
	l.must("profile", "set", "web", "user.secret=p1", "--project", "p1")
	for _, q := range []string{"", "?project=other"} {
		for _, m := range []string{"GET", "PUT", "POST", "DELETE"} {
			body := strings.NewReader(`{"config":{"user.secret":"stolen"},"name":"taken"}`)
			code, env := d.raw(m, "/1.0/profiles/p1%2Fweb"+q, body)
			if code < 400 {
				t.Errorf("%s /1.0/profiles/p1%%2Fweb%s: %d %s", m, q, code, env.Metadata)
			}
		}
	}

	// Positive control: the same requests reach it through its project.
	if code, _ := d.raw("GET", "/1.0/profiles/web?project=p1", nil); code != 200 {
		t.Errorf("GET p1's web through p1: %d", code)
	}

	if out := l.must("profile", "get", "web", "user.secret", "--project", "p1"); strings.TrimSpace(out) != "p1" {
		t.Errorf("p1's web profile changed: user.secret=%q", out)
	}
}

// memoryLimit is an instance's memory limit as its cgroup has it: the v1 memory
// controller's where the host has one, else cgroup2's memory.max.
func (d *daemon) memoryLimit(t *testing.T, name string) string {
	t.Helper()
	if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" {
		return got
	}

	l, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(l.Unified, cgroup.ParentFor(d.dir), name, "memory.max"))
	if err != nil {
		t.Fatal(err)
	}

	return strings.TrimSpace(string(b))
}
