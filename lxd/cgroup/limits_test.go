package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/test/testutil"
)

// TestSetLimitsLive sets every limit, changes them, and lifts them again, reading the
// control files back: the same calls serve container start and live updates.
func TestSetLimitsLive(t *testing.T) {
	testutil.RequireRoot(t, "manage cgroups")

	l := testLayout(t)
	if l.Mode == sys.CgroupUnified {
		t.Skip("checks v1 control files; v2 files are covered by the lifecycle test")
	}

	g, err := New(fmt.Sprintf("limits-%d", os.Getpid()), l)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	err = g.Create()
	if err != nil {
		t.Fatal(err)
	}

	v1 := g.(*v1Group)
	read := func(ctrl, file string) string {
		t.Helper()
		s, err := readString(filepath.Join(v1.dirs[ctrl], file))
		if err != nil {
			t.Fatal(err)
		}

		return s
	}

	err = g.SetLimits(Limits{MemoryBytes: 128 << 20, CPUSet: "0", CPUQuotaUs: 25000, CPUPeriodUs: 100000, PidsMax: 77})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range [][3]string{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"cpuset", "cpuset.cpus", "0"},
		{"cpu", "cpu.cfs_quota_us", "25000"},
		{"pids", "pids.max", "77"},
	} {
		got := read(c[0], c[1])
		if got != c[2] {
			t.Errorf("%s = %q, want %q", c[1], got, c[2])
		}
	}

	err = g.SetLimits(Limits{})
	if err != nil {
		t.Fatal(err)
	}

	parentCPUs, _ := readString(filepath.Join(filepath.Dir(v1.dirs["cpuset"]), "cpuset.cpus"))
	for _, c := range [][3]string{
		{"memory", "memory.limit_in_bytes", "9223372036854771712"},
		{"cpuset", "cpuset.cpus", parentCPUs},
		{"cpu", "cpu.cfs_quota_us", "-1"},
		{"pids", "pids.max", fmt.Sprint(DefaultPidsMax)},
	} {
		got := read(c[0], c[1])
		if got != c[2] {
			t.Errorf("after lifting, %s = %q, want %q", c[1], got, c[2])
		}
	}
}
