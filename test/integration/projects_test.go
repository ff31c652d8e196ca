package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLXCProjects drives projects with Debian's lxc: a project switched to shows only
// its instances, --all-projects shows every project's, two projects' containers of one
// name run at once without sharing a host object, a project with instances is neither
// deleted nor renamed, and limits.instances refuses one instance too many with a message
// naming the limit.
func TestLXCProjects(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "p1", "-c", "features.images=false") // the default project's debian/12
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "c1", "--project", "p1")
		_, _ = l.run("delete", "-f", "c2", "--project", "p1")
		_, _ = l.run("delete", "-f", "c1", "--project", "default")
		_, _ = l.run("project", "delete", "p1")
	})

	out := l.must("project", "list", "--format", "csv")
	if !strings.Contains(out, "p1") || !strings.Contains(out, "default") {
		t.Fatalf("lxc project list:\n%s", out)
	}

	// c1 in the default project, then c1 in p1: both run at once.
	l.must("launch", "debian/12", "c1")
	l.must("project", "switch", "p1")
	l.must("launch", "debian/12", "c1")

	out = l.must("list", "--format", "csv", "-c", "ns")
	if strings.Count(out, "c1,") != 1 || !strings.Contains(out, "c1,RUNNING") {
		t.Fatalf("lxc list in p1:\n%s", out)
	}

	out = l.must("list", "--all-projects", "--format", "csv", "-c", "ens")
	if !strings.Contains(out, "default,c1,RUNNING") || !strings.Contains(out, "p1,c1,RUNNING") {
		t.Fatalf("lxc list --all-projects:\n%s", out)
	}

	// Each is itself: its own hostname, its own root filesystem, its own directory.
	host := strings.TrimSpace(l.must("exec", "c1", "--", "hostname"))
	if host != "c1" {
		t.Errorf("hostname in p1's c1 = %q, want c1", host)
	}

	l.must("exec", "c1", "--", "sh", "-c", "echo p1 > /root/which")
	out, err := l.run("exec", "c1", "--project", "default", "--", "cat", "/root/which")
	if err == nil {
		t.Errorf("the default project's c1 sees p1's file: %q", out)
	}

	for _, key := range []string{"c1", "p1_c1"} {
		_, err := os.Stat(filepath.Join(d.dir, "instances", key, "run", "monitor.pid"))
		if err != nil {
			t.Errorf("instance directory %s: %v", key, err)
		}
	}

	// p1's c1 is reached only through p1: its key is no name in another project.
	for _, path := range []string{"/1.0/instances/p1_c1", "/1.0/instances/p1_c1/state", "/1.0/instances/p1_c1?project=default"} {
		if code, env := d.raw("GET", path, nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, code, env.Error)
		}
	}

	if d.initPID("c1") == 0 {
		t.Fatal("the default project's c1 has no init")
	}

	// A project with instances is neither deleted nor renamed; the default one never.
	out = l.fails("project", "delete", "p1")
	if !strings.Contains(out, "not empty") {
		t.Errorf("refused delete says:\n%s", out)
	}

	l.fails("project", "rename", "p1", "p9")
	l.fails("project", "delete", "default")

	// limits.instances=2: one more is fine, a third is refused naming the limit; a
	// limit below what is used is refused too.
	l.must("project", "set", "p1", "limits.instances=2")
	l.must("init", "debian/12", "c2")
	out = l.fails("init", "debian/12", "c3")
	if !strings.Contains(out, "limits.instances=2") {
		t.Errorf("third instance refused with:\n%s", out)
	}

	out = l.fails("project", "set", "p1", "limits.instances=1")
	if !strings.Contains(out, "limits.instances=1") {
		t.Errorf("a limit below the use refused with:\n%s", out)
	}

	// limits.memory needs every instance to set limits.memory; set, a change that
	// would exceed it is refused naming the limit.
	out = l.fails("project", "set", "p1", "limits.memory=1GiB")
	if !strings.Contains(out, "sets no limits.memory") {
		t.Errorf("limits.memory over instances without it refused with:\n%s", out)
	}

	l.must("config", "set", "c2", "limits.memory=512MiB")
	l.must("config", "set", "c1", "limits.memory=512MiB")
	l.must("project", "set", "p1", "limits.memory=1GiB")
	out = l.fails("config", "set", "c2", "limits.memory=600MiB")
	if !strings.Contains(out, "limits.memory=1GiB") {
		t.Errorf("a config change over limits.memory refused with:\n%s", out)
	}

	out = l.must("project", "info", "p1")
	if !strings.Contains(strings.ToUpper(out), "INSTANCES") {
		t.Errorf("lxc project info:\n%s", out)
	}

	// An unknown project is a 404 naming it.
	out = l.fails("list", "--project", "nope")
	if !strings.Contains(out, `"nope"`) {
		t.Errorf("unknown project refused with:\n%s", out)
	}

	// Deleting p1's c1 leaves the default project's running.
	l.must("delete", "-f", "c1")
	l.must("delete", "c2")
	out = l.must("list", "--project", "default", "--format", "csv", "-c", "ns")
	if !strings.Contains(out, "c1,RUNNING") {
		t.Fatalf("the default project's c1 after p1's went:\n%s", out)
	}

	l.must("project", "switch", "default")
	l.must("project", "rename", "p1", "p2")
	l.must("project", "delete", "p2")
}

// TestLXCProjectRestricted: a restricted project refuses what would loosen confinement
// (nesting, a host path disk, a unix-char device), naming the key, and allows a plain
// container; the same requests in an unrestricted project pass (positive control).
func TestLXCProjectRestricted(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "locked", "-c", "restricted=true", "-c", "features.images=false")
	l.must("project", "create", "open", "-c", "features.images=false")
	t.Cleanup(func() {
		for _, p := range []string{"locked", "open"} {
			_, _ = l.run("delete", "-f", "r1", "--project", p)
			_, _ = l.run("delete", "-f", "r2", "--project", p)
			_, _ = l.run("project", "delete", p)
		}
	})

	src := t.TempDir()
	for _, p := range []string{"open", "locked"} {
		out, err := l.run("init", "debian/12", "r1", "--project", p, "-c", "security.nesting=true")
		if p == "open" && err != nil {
			t.Fatalf("nesting in an open project: %v\n%s", err, out)
		}

		if p == "locked" && (err == nil || !strings.Contains(out, "restricted.containers.nesting")) {
			t.Fatalf("nesting in a restricted project: %v\n%s", err, out)
		}

		l.must("init", "debian/12", "r2", "--project", p)
		out, err = l.run("config", "device", "add", "r2", "data", "disk", "source="+src, "path=/mnt", "--project", p)
		if p == "open" && err != nil {
			t.Fatalf("host disk in an open project: %v\n%s", err, out)
		}

		if p == "locked" && (err == nil || !strings.Contains(out, "restricted.devices.disk")) {
			t.Fatalf("host disk in a restricted project: %v\n%s", err, out)
		}

		out, err = l.run("config", "device", "add", "r2", "kmsg", "unix-char", "path=/dev/kmsg", "--project", p)
		if p == "locked" && (err == nil || !strings.Contains(out, "restricted.devices.unix-char")) {
			t.Fatalf("unix-char in a restricted project: %v\n%s", err, out)
		}

		_ = out
	}

	// Nothing was written for the refused requests.
	out := l.must("config", "device", "list", "r2", "--project", "locked")
	if strings.Contains(out, "data") || strings.Contains(out, "kmsg") {
		t.Fatalf("refused devices recorded:\n%s", out)
	}

	// A restricted project changes its own profiles (features.profiles, on by default),
	// but not into what its restrictions forbid for the instances using them.
	l.must("profile", "set", "default", "limits.cpu=1", "--project", "locked")
	out = l.fails("profile", "device", "add", "default", "data", "disk", "source="+src, "path=/mnt", "--project", "locked")
	if !strings.Contains(out, "restricted.devices.disk") {
		t.Errorf("host disk through a restricted project's own profile refused with:\n%s", out)
	}

	// It may not change what it shares with the default project.
	l.must("project", "create", "lockedshared", "-c", "restricted=true", "-c", "features.profiles=false", "-c", "features.images=false")
	t.Cleanup(func() { _, _ = l.run("project", "delete", "lockedshared") })
	out = l.fails("profile", "set", "default", "limits.cpu=1", "--project", "lockedshared")
	if !strings.Contains(out, "restricted") {
		t.Errorf("profile change from a restricted project refused with:\n%s", out)
	}

	if got := l.must("profile", "get", "default", "limits.cpu", "--project", "default"); strings.TrimSpace(got) != "" {
		t.Errorf("the default project's default profile got limits.cpu=%q", got)
	}
}
