package integration

import (
	"encoding/json"
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
	parallel(t)
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

// TestAttackMigrateVolatileHostName: the volatile keys a migration brings (in the
// request, which lxc fills from the source's config, or in the source's snapshot header)
// are the daemon's record of the instance on its old server. A NIC's host end
// (volatile.<dev>.host_name) is one the daemon deletes by name when the instance stops,
// whatever the interface is: brought in, it would make the host delete one of its own
// (its uplink, a bridge, another tenant's veth) at the first stop. Such keys are dropped;
// the instance's uuid and MAC addresses (the positive control) stay, as lxc move wants.
// Without the fix the host names are stored as the instance's and its snapshot's.
func TestAttackMigrateVolatileHostName(t *testing.T) {
	parallel(t)
	b := startDaemon(t)
	const uuid = "8a6b1c4e-0d5b-4c1e-9a63-2f3a2c3b4d5e"
	const mac = "00:16:3e:12:34:56"
	h := newHostileSource(t, hostTree(t))
	h.mu.Lock()
	h.config = map[string]string{"volatile.uuid": uuid, "volatile.eth0.hwaddr": mac,
		"volatile.eth0.host_name": "lo", "volatile.ghost.host_name": "eth0"}
	h.snaps = []api.InstanceSnapshot{{Name: "snap0", Architecture: "x86_64", Profiles: []string{"default"},
		Config: map[string]string{"volatile.eth0.host_name": "lo", "volatile.eth0.hwaddr": mac}}}
	h.mu.Unlock()
	if e := h.pull(t, b, "moved"); e != "" {
		t.Fatalf("migration: %s", e)
	}

	code, inst := instanceOf(t, b, "moved")
	if code != http.StatusOK {
		t.Fatalf("instance after the migration: %d", code)
	}

	if inst.Config["volatile.uuid"] != uuid || inst.Config["volatile.eth0.hwaddr"] != mac {
		t.Errorf("positive control: uuid %q, hwaddr %q kept? config %v", inst.Config["volatile.uuid"], inst.Config["volatile.eth0.hwaddr"], inst.Config)
	}

	for _, k := range []string{"volatile.eth0.host_name", "volatile.ghost.host_name"} {
		if v, ok := inst.Config[k]; ok {
			t.Errorf("the migrated instance records host interface %s=%q, which its stop would delete", k, v)
		}
	}

	var snap api.InstanceSnapshot
	code, env := b.raw("GET", "/1.0/instances/moved/snapshots/snap0", nil)
	if code != http.StatusOK {
		t.Fatalf("GET snapshot: %d %s", code, env.Error)
	}

	if err := json.Unmarshal(env.Metadata, &snap); err != nil {
		t.Fatal(err)
	}

	if v, ok := snap.Config["volatile.eth0.host_name"]; ok {
		t.Errorf("the migrated snapshot records host interface %q, which a restore then a stop would delete", v)
	}

	if snap.Config["volatile.eth0.hwaddr"] != mac {
		t.Errorf("positive control: the snapshot's hwaddr: config %v", snap.Config)
	}
}
