package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// TestVolumeStateLXC: with the stock lxc, a custom volume's state
// (storage_volume_state) gives its usage where the pool knows it: on a btrfs pool the
// bytes the volume holds and its size, which lxc storage volume info prints; a pool that
// cannot tell answers with no usage rather than a guess, and an unknown volume is a 404.
func TestVolumeStateLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	lxc, must := poolLXC(t, d)
	t.Cleanup(func() {
		_, _ = lxc("storage", "volume", "delete", "bt", "q1")
		_, _ = lxc("storage", "volume", "delete", "default", "v1")
		_, _ = lxc("storage", "delete", "bt")
	})

	must("storage", "create", "bt", "btrfs", "size=1GiB")
	must("storage", "volume", "create", "bt", "q1", "size=64MiB")
	data := filepath.Join(d.dir, "storage-pools", "bt", "custom", "q1", "fill")
	if err := os.WriteFile(data, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	unix.Sync() // btrfs counts the bytes once they are written out

	st := api.StorageVolumeState{}
	out := must("query", "/1.0/storage-pools/bt/volumes/custom/q1/state")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("state of q1: %v\n%s", err, out)
	}

	if st.Usage == nil || st.Usage.Used < 8<<20 || st.Usage.Used > 16<<20 || st.Usage.Total != 64<<20 {
		t.Errorf("state of q1 holding 8 MiB under a 64 MiB size: %s", out)
	}

	out = must("storage", "volume", "info", "bt", "q1")
	if !strings.Contains(out, "Usage: 8") || !strings.Contains(out, "Total: 64.00MiB") {
		t.Errorf("lxc storage volume info bt q1:\n%s", out)
	}

	// The default pool: usage only where its filesystem tells it.
	must("storage", "volume", "create", "default", "v1")
	out = must("query", "/1.0/storage-pools/default/volumes/custom/v1/state")
	st = api.StorageVolumeState{}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("state of v1: %v\n%s", err, out)
	}

	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Join(d.dir, "storage-pools", "default"), &fs); err != nil {
		t.Fatal(err)
	}

	if fs.Type != unix.BTRFS_SUPER_MAGIC && st.Usage != nil {
		t.Errorf("a pool that cannot tell usage reports one: %s", out)
	}

	if out, err := lxc("query", "/1.0/storage-pools/default/volumes/custom/nope/state"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("state of a missing volume: %v\n%s", err, out)
	}
}

// TestVolumeBackupRenameLXC: a custom volume's backup is renamed (POST
// .../backups/{backup}, as LXD): the new name lists and exports, the old is gone; a
// rename onto another backup's name is a 409 and leaves both, a missing backup a 404.
func TestVolumeBackupRenameLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	t.Cleanup(func() { _, _ = lxc("storage", "volume", "delete", "default", "v1") })

	base := "/1.0/storage-pools/default/volumes/custom/v1/backups"
	must("storage", "volume", "create", "default", "v1")
	must("query", "--wait", "-X", "POST", "-d", `{"name":"b1"}`, base)
	must("query", "--wait", "-X", "POST", "-d", `{"name":"b3"}`, base)

	must("query", "--wait", "-X", "POST", "-d", `{"name":"b2"}`, base+"/b1")
	out := must("query", base)
	if !strings.Contains(out, base+"/b2") || strings.Contains(out, base+"/b1") {
		t.Errorf("backups after renaming b1 to b2:\n%s", out)
	}

	if out := must("query", base+"/b2"); !strings.Contains(out, `"name": "b2"`) {
		t.Errorf("GET b2:\n%s", out)
	}

	out, err := lxc("query", "--wait", "-X", "POST", "-d", `{"name":"b3"}`, base+"/b2")
	if err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("renaming b2 onto b3: %v\n%s", err, out)
	}

	out = must("query", base)
	if !strings.Contains(out, base+"/b2") || !strings.Contains(out, base+"/b3") {
		t.Errorf("a refused rename lost a backup:\n%s", out)
	}

	out, err = lxc("query", "--wait", "-X", "POST", "-d", `{"name":"b9"}`, base+"/b7")
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("renaming a missing backup: %v\n%s", err, out)
	}
}
