package integration

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestAttackMigrateSnapshotDevices: a migration source describes its snapshots in its
// header, config and devices included, and no client of the target chose them: a
// snapshot with a device that reaches the host (a host path, a host device node, a host
// socket, a host interface) is refused as an imported backup's is, and nothing of the
// instance is left. Without the check the snapshot arrives with its device, and `lxc
// restore` would make it the instance's. The positive control brings a snapshot with a
// root disk and a user key: it arrives.
func TestAttackMigrateSnapshotDevices(t *testing.T) {
	b := startDaemon(t)
	snap := func(devices map[string]map[string]string) []api.InstanceSnapshot {
		return []api.InstanceSnapshot{{Name: "snap0", Architecture: "x86_64", Profiles: []string{"default"},
			Config: map[string]string{"user.origin": "hostile"}, Devices: devices}}
	}

	pull := func(t *testing.T, name string, snaps []api.InstanceSnapshot) string {
		h := newHostileSource(t, hostTree(t))
		h.mu.Lock()
		h.snaps = snaps
		h.mu.Unlock()
		return h.pull(t, b, name)
	}

	t.Run("positive control", func(t *testing.T) {
		root := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}
		if e := pull(t, "ok", snap(root)); e != "" {
			t.Fatalf("a snapshot with a root disk failed: %s", e)
		}

		if got := snapshotNames(t, b, "ok"); len(got) != 1 || got[0] != "snap0" {
			t.Fatalf("snapshots after the transfer: %v", got)
		}
	})

	for i, dev := range []map[string]string{
		{"type": "disk", "source": "/etc", "path": "/host-etc"},
		{"type": "unix-char", "source": "/dev/mem", "path": "/dev/mem"},
		{"type": "proxy", "listen": "tcp:127.0.0.1:2222", "connect": "tcp:127.0.0.1:22", "bind": "host"},
		{"type": "nic", "nictype": "physical", "parent": "lo"},
	} {
		t.Run(dev["type"], func(t *testing.T) {
			bad := fmt.Sprintf("bad%d", i)
			before := map[string]bool{}
			for _, p := range leftovers(b, bad) {
				before[p] = true
			}

			e := pull(t, bad, snap(map[string]map[string]string{"evil": dev}))
			t.Logf("refused: %s", e)
			if e == "" {
				t.Fatalf("a snapshot with a %s device reaching the host was accepted", dev["type"])
			}

			if code, _ := instanceOf(t, b, bad); code != http.StatusNotFound {
				t.Errorf("instance after the refused transfer: %d", code)
			}

			for _, p := range leftovers(b, bad) {
				if !before[p] {
					t.Errorf("left on disk after the refused transfer: %s", p)
				}
			}
		})
	}
}
