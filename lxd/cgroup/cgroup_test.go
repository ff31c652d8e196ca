package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/mountinfo"
	"github.com/berth-dev/berth/test/testutil"
)

func TestParseV1Mounts(t *testing.T) {
	in := `25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
32 25 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
33 32 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
36 32 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
37 32 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 32 0:33 /sub /mnt/elsewhere rw - cgroup cgroup rw,pids
39 32 0:34 / /sys/fs/cgroup/with\040space rw - cgroup cgroup rw,freezer
`
	got := map[string]string{}

	mounts, err := mountinfo.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}

	parseV1Mounts(mounts, got)

	want := map[string]string{
		"cpu":     "/sys/fs/cgroup/cpu,cpuacct",
		"cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
		"memory":  "/sys/fs/cgroup/memory",
		"freezer": "/sys/fs/cgroup/with space",
	}

	for k, v := range want {
		if got[k] != v {
			t.Errorf("controller %s: got %q, want %q", k, got[k], v)
		}
	}

	_, ok := got["rw"]
	if ok {
		t.Error("mount option rw taken as a controller")
	}

	_, ok = got["pids"]
	if ok {
		t.Error("a bind of a sub-cgroup was taken as a hierarchy root")
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]string{"": "0/", "2": "2/", "0-1": "0/0-1", "0,2": "0/0,2"} {
		n, set, err := parseCPUs(in)
		if err != nil || fmt.Sprintf("%d/%s", n, set) != want {
			t.Errorf("parseCPUs(%q) = %d, %q, %v; want %s", in, n, set, err, want)
		}
	}

	for _, bad := range []string{"0", "-1", "a-b", "1.5"} {
		_, _, err := parseCPUs(bad)
		if err == nil {
			t.Errorf("parseCPUs(%q) succeeded", bad)
		}
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	for _, n := range []string{"", ".", "..", "a/b", "x\x00"} {
		_, err := New(n, Layout{Mode: sys.CgroupUnified, Unified: "/sys/fs/cgroup"})
		if err == nil {
			t.Errorf("New(%q) succeeded", n)
		}
	}
}

// TestGroupLifecycle runs a real process through a real group on this host.
// On a hybrid host it also runs the pure-v2 implementation against the
// unified hierarchy (which has no controllers there, so no limits).
func TestGroupLifecycle(t *testing.T) {
	testutil.RequireRoot(t, "manage cgroups")

	l := testLayout(t)
	t.Logf("layout %s, unified %q, v1 %v", l.Mode, l.Unified, l.V1)

	t.Run(l.Mode.String(), func(t *testing.T) { testLifecycle(t, l, true) })

	if l.Mode == sys.CgroupHybrid {
		v2 := Layout{Mode: sys.CgroupUnified, Unified: l.Unified, Parent: l.Parent}
		t.Run("v2-on-unified", func(t *testing.T) { testLifecycle(t, v2, false) })
	}
}

// testLayout is the host's layout with a cgroup parent of the test's own (not a host
// daemon's "berth"), removed after everything else of the test: one left behind, or
// not empty, fails the test.
func testLayout(t *testing.T) Layout {
	t.Helper()
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}

	l.Parent = ParentFor(t.TempDir())
	t.Cleanup(func() {
		err := l.RemoveParent()
		if err != nil {
			t.Errorf("cgroup left behind: %v", err)
		}
	})

	return l
}

func testLifecycle(t *testing.T, l Layout, limits bool) {
	name := fmt.Sprintf("test-%d", os.Getpid())

	g, err := New(name, l)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	err = g.Create()
	if err != nil {
		t.Fatal(err)
	}

	if limits {
		err = g.SetLimits(Limits{MemoryBytes: 256 << 20, CPUs: "1", PidsMax: 50})
		if err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command("sleep", "1000")

	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	err = g.AddProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	procs, err := g.Procs()
	if err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
		t.Fatalf("Procs() = %v, %v; want [%d]", procs, err, cmd.Process.Pid)
	}

	ns := g.NamespacePath()
	if ns != "" {
		err = g.Delegate(1000000, 1000000)
		if err != nil {
			t.Fatal(err)
		}

		for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
			st, err := os.Stat(filepath.Join(ns, f))
			if err != nil {
				t.Fatal(err)
			}

			if st.Sys().(*syscall.Stat_t).Uid != 1000000 {
				t.Errorf("%s/%s not delegated", ns, f)
			}
		}

		selfCg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		if !strings.Contains(string(selfCg), "0::/"+l.parent()+"/"+name+"\n") {
			t.Errorf("process not in unified group: %s", selfCg)
		}
	}

	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}

	// Memory is charged where it was allocated (v1 does not move charges),
	// so a freshly moved sleep may show 0 bytes.
	if st.Processes != 1 || st.MemoryBytes < 0 || (limits && st.Pids != 1) {
		t.Errorf("implausible stats %+v", st)
	}

	err = g.Freeze()
	if err != nil {
		t.Fatal(err)
	}

	frozen, err := g.Frozen()
	if err != nil || !frozen {
		t.Fatalf("Frozen() = %v, %v after Freeze", frozen, err)
	}

	err = g.Thaw()
	if err != nil {
		t.Fatal(err)
	}

	frozen, _ = g.Frozen()
	if frozen {
		t.Fatal("still frozen after Thaw")
	}

	// Freeze again: Remove must be able to kill frozen processes.
	err = g.Freeze()
	if err != nil {
		t.Fatal(err)
	}

	err = g.Remove()
	if err != nil {
		t.Fatal(err)
	}

	err = cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("sleep ended with %v, want killed", err)
	}

	for _, d := range append(dirsOf(g), ns) {
		if d == "" {
			continue
		}

		_, err = os.Stat(d)
		if !os.IsNotExist(err) {
			t.Errorf("%s still exists after Remove (%v)", d, err)
		}
	}

	err = g.Remove()
	if err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func dirsOf(g Group) []string {
	switch g := g.(type) {
	case *v1Group:
		return g.allDirs()
	case *v2Group:
		return []string{g.dir}
	}

	return nil
}
