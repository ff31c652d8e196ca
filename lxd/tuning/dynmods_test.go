package tuning

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// TestDynmodsPlan: the flags a reconfiguration must repeat are the superblock's cgroup2
// flags (never the mount's nosuid and the like, never rw, never a security module's
// seclabel), so none is cleared; the first cgroup2 mount is the one, on a hybrid host as
// on a pure cgroup2 one.
func TestDynmodsPlan(t *testing.T) {
	for _, c := range []struct {
		name, mountinfo string
		target          string
		others          []string
		on              bool
	}{
		{
			name: "systemd cgroup2",
			mountinfo: "25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,seclabel,nsdelegate,memory_recursiveprot\n" +
				"26 22 0:23 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:5 - bpf bpf rw,mode=700\n",
			target: "/sys/fs/cgroup", others: []string{"nsdelegate", "memory_recursiveprot"},
		},
		{
			name: "hybrid, already set",
			mountinfo: "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
				"31 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,favordynmods\n",
			target: "/sys/fs/cgroup/unified", on: true,
		},
		{
			name:      "v1 only",
			mountinfo: "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			mounts, err := mountinfo.Parse(strings.NewReader(c.mountinfo))
			if err != nil {
				t.Fatal(err)
			}

			features := map[string]bool{"nsdelegate": true, "favordynmods": true, "memory_localevents": true, "memory_recursiveprot": true}
			target, others, on := dynmodsPlan(mounts, features)
			if target != c.target || !reflect.DeepEqual(others, c.others) || on != c.on {
				t.Fatalf("dynmodsPlan = %q %q %t, want %q %q %t", target, others, on, c.target, c.others, c.on)
			}
		})
	}
}
