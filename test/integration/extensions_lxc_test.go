package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStockLXCWithAdvertisedExtensions: the stock lxc 5.0.2 decides what to call from
// GET /1.0's api_extensions, which advertise only what berthd serves end to end. The
// everyday commands must work with that list (an extension it needs and berthd left out
// would fail one of them), and what is left out must fail cleanly.
func TestStockLXCWithAdvertisedExtensions(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc := newLXC(t, d.dir)
	_, _ = lxc.run("list") // a fresh LXD_CONF's first run only prints a hint

	lxc.must("launch", "debian/12", "e1")
	d.waitRunning("e1")
	if out := lxc.must("list", "--format", "csv", "-c", "ns"); !strings.Contains(out, "e1,RUNNING") {
		t.Errorf("lxc list:\n%s", out)
	}

	if out := lxc.must("exec", "e1", "--", "cat", "/etc/hostname"); strings.TrimSpace(out) != "e1" {
		t.Errorf("lxc exec: %q", out)
	}

	local := filepath.Join(t.TempDir(), "f")
	err := os.WriteFile(local, []byte("through lxc file\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	lxc.must("file", "push", local, "e1/root/f")
	if out := lxc.must("exec", "e1", "--", "cat", "/root/f"); out != "through lxc file\n" {
		t.Errorf("after lxc file push: %q", out)
	}

	back := filepath.Join(t.TempDir(), "back")
	lxc.must("file", "pull", "e1/root/f", back)
	if data, _ := os.ReadFile(back); string(data) != "through lxc file\n" {
		t.Errorf("lxc file pull: %q", data)
	}

	lxc.must("file", "delete", "e1/root/f")
	lxc.must("snapshot", "e1", "snap0")
	if out := lxc.must("info", "e1"); !strings.Contains(out, "snap0") {
		t.Errorf("lxc info after lxc snapshot:\n%s", out)
	}

	if out := lxc.must("image", "list", "--format", "csv"); !strings.Contains(out, "debian/12") {
		t.Errorf("lxc image list:\n%s", out)
	}

	if out := lxc.must("storage", "list", "--format", "csv"); !strings.Contains(out, "default") {
		t.Errorf("lxc storage list:\n%s", out)
	}

	lxc.must("network", "list")
	lxc.must("config", "trust", "list")

	// Pools are served (lxd/pools): the stock client creates and deletes one.
	lxc.must("storage", "create", "p2", "dir")
	if out := lxc.must("storage", "list", "--format", "csv"); !strings.Contains(out, "p2,dir") {
		t.Errorf("lxc storage list after create:\n%s", out)
	}

	lxc.must("storage", "delete", "p2")
}
