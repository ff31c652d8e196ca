package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProjectsVolumesLXC drives features.storage.volumes with the stock lxc: a new
// project owns its volumes (on by default, as LXD 5.0); a volume of one name in the
// project and in the default project are two volumes, each attached to its project's
// container reads its own content, on disk apart (the default project's under its own
// name, as before projects had volumes); lists and used_by show each project its own;
// the feature cannot change on a project with volumes; deleting the project's volume
// keeps the default project's; a project without the feature uses the default project's.
func TestProjectsVolumesLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	l := newLXCRunner(t, d)

	// Both launch the default project's debian/12: they share its images.
	l.must("project", "create", "pv", "-c", "features.images=false")
	l.must("project", "create", "pvshared", "-c", "features.storage.volumes=false", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "c0")
		_, _ = l.run("delete", "-f", "c1", "--project", "pv")
		_, _ = l.run("delete", "-f", "c2", "--project", "pvshared")
		_, _ = l.run("storage", "volume", "delete", "default", "data", "--project", "pv")
		_, _ = l.run("storage", "volume", "delete", "default", "data")
		_, _ = l.run("project", "delete", "pv")
		_, _ = l.run("project", "delete", "pvshared")
	})

	if got := strings.TrimSpace(l.must("project", "get", "pv", "features.storage.volumes")); got != "true" {
		t.Fatalf("a new project's features.storage.volumes = %q, want true (LXD 5.0)", got)
	}

	l.must("storage", "volume", "create", "default", "data")
	l.must("storage", "volume", "create", "default", "data", "--project", "pv")

	l.must("launch", "debian/12", "c0")
	l.must("launch", "debian/12", "c1", "--project", "pv")
	d.waitRunning("c0")
	l.must("storage", "volume", "attach", "default", "data", "c0", "/data")
	l.must("storage", "volume", "attach", "default", "data", "c1", "/data", "--project", "pv")

	l.must("exec", "c0", "--", "sh", "-c", "echo default > /data/who")
	l.must("exec", "c1", "--project", "pv", "--", "sh", "-c", "echo pv > /data/who")
	if got := l.must("exec", "c0", "--", "cat", "/data/who"); got != "default\n" {
		t.Errorf("c0 reads %q from the default project's data", got)
	}

	if got := l.must("exec", "c1", "--project", "pv", "--", "cat", "/data/who"); got != "pv\n" {
		t.Errorf("c1 reads %q from project pv's data", got)
	}

	// On disk apart; the default project's where it always was.
	custom := filepath.Join(d.dir, "storage-pools", "default", "custom")
	for dir, want := range map[string]string{"data": "default\n", "data@pv": "pv\n"} {
		got, err := os.ReadFile(filepath.Join(custom, dir, "who"))
		if err != nil || string(got) != want {
			t.Errorf("%s/who on the host = %q, %v; want %q", dir, got, err, want)
		}
	}

	out := l.must("storage", "volume", "show", "default", "data", "--project", "pv")
	if !strings.Contains(out, "/1.0/instances/c1?project=pv") || strings.Contains(out, "/1.0/instances/c0") || !strings.Contains(out, "project: pv") {
		t.Errorf("project pv's data shows:\n%s", out)
	}

	out = l.must("storage", "volume", "show", "default", "data")
	if !strings.Contains(out, "/1.0/instances/c0") || strings.Contains(out, "c1") {
		t.Errorf("the default project's data shows:\n%s", out)
	}

	// Snapshots are the project's volume's.
	l.must("storage", "volume", "snapshot", "default", "data", "s0", "--project", "pv")
	snaps := "/1.0/storage-pools/default/volumes/custom/data/snapshots"
	if code, env := d.raw("GET", snaps, nil); code != http.StatusOK || string(env.Metadata) != "[]" {
		t.Errorf("the default project's data has snapshots: %d %s", code, env.Metadata)
	}

	if code, env := d.raw("GET", snaps+"?project=pv", nil); code != http.StatusOK || !strings.Contains(string(env.Metadata), "/s0?project=pv") {
		t.Errorf("project pv's data's snapshots: %d %s", code, env.Metadata)
	}

	// Copy, rename, export and import stay in the project.
	for _, v := range []string{"extra", "extra2", "extra3", "extra4"} {
		v := v
		t.Cleanup(func() { _, _ = l.run("storage", "volume", "delete", "default", v, "--project", "pv") })
	}

	l.must("storage", "volume", "create", "default", "extra", "--project", "pv")
	// Content (from the host: an empty volume's backup does not import today, see the
	// volume backup tests).
	if err := os.WriteFile(filepath.Join(custom, "extra@pv", "f"), []byte("extra\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must("storage", "volume", "copy", "default/extra", "default/extra2", "--project", "pv")
	l.must("storage", "volume", "rename", "default", "extra2", "extra3", "--project", "pv")
	backup := filepath.Join(t.TempDir(), "extra.tar.gz")
	l.must("storage", "volume", "export", "default", "extra", backup, "--project", "pv")
	l.must("storage", "volume", "import", "default", backup, "extra4", "--project", "pv")
	out = l.must("storage", "volume", "list", "default", "--format", "csv", "--project", "pv")
	for _, v := range []string{"extra,", "extra3,", "extra4,"} {
		if !strings.Contains(out, "custom,"+v) {
			t.Errorf("project pv's list lacks %s:\n%s", v, out)
		}
	}

	for _, v := range []string{"extra3@pv", "extra4@pv"} {
		if got, err := os.ReadFile(filepath.Join(custom, v, "f")); err != nil || string(got) != "extra\n" {
			t.Errorf("%s/f = %q, %v", v, got, err)
		}
	}

	out = l.must("storage", "volume", "list", "default", "--format", "csv")
	if strings.Contains(out, "extra") {
		t.Errorf("the default project lists project pv's volumes:\n%s", out)
	}

	for _, v := range []string{"extra", "extra3", "extra4"} {
		l.must("storage", "volume", "delete", "default", v, "--project", "pv")
	}

	// Not on a project with volumes (or instances).
	out = l.fails("project", "set", "pv", "features.storage.volumes=false")
	if !strings.Contains(out, "features") {
		t.Errorf("turning features.storage.volumes off on a project with volumes refused with:\n%s", out)
	}

	if got := strings.TrimSpace(l.must("project", "get", "pv", "features.storage.volumes")); got != "true" {
		t.Errorf("features.storage.volumes = %q after the refused change", got)
	}

	// Delete in pv keeps the default project's.
	l.must("storage", "volume", "detach", "default", "data", "c1", "--project", "pv")
	l.must("storage", "volume", "delete", "default", "data", "--project", "pv")
	if _, err := os.Stat(filepath.Join(custom, "data@pv")); !os.IsNotExist(err) {
		t.Errorf("project pv's data is still on disk: %v", err)
	}

	if got := l.must("exec", "c0", "--", "cat", "/data/who"); got != "default\n" {
		t.Errorf("c0 reads %q after project pv's data went", got)
	}

	out = l.must("storage", "volume", "list", "default", "--format", "csv", "--project", "pv")
	if strings.Contains(out, "data") {
		t.Errorf("project pv still lists data:\n%s", out)
	}

	// A project without the feature uses the default project's volumes.
	out = l.must("storage", "volume", "list", "default", "--format", "csv", "--project", "pvshared")
	if !strings.Contains(out, "data") {
		t.Errorf("a project without features.storage.volumes does not see the default project's data:\n%s", out)
	}

	l.must("init", "debian/12", "c2", "--project", "pvshared")
	l.must("storage", "volume", "set", "default", "data", "security.shared=true")
	l.must("storage", "volume", "attach", "default", "data", "c2", "/data", "--project", "pvshared")
	out = l.must("storage", "volume", "show", "default", "data")
	if !strings.Contains(out, "/1.0/instances/c2?project=pvshared") {
		t.Errorf("used_by of the default project's data lacks pvshared's c2:\n%s", out)
	}
}
