package cgroup

// These tests run the systemd-backed Group against a fake systemd Manager
// on a private dbus-daemon, with scopes made on a real cgroup2 hierarchy
// (the unified one of a hybrid host). They verify what Berth sends and how
// it reacts: method names, D-Bus signatures, property names, types and
// values, the job wait, the disconnect retry and the fallback. Whether a
// real systemd accepts these properties and builds the tree as expected
// can only be checked on a systemd host.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/test/testutil"
	"github.com/godbus/dbus/v5"
)

// unifiedRoot is a cgroup2 mount to build fake scopes in.
func unifiedRoot(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t, "manage cgroups")

	mode, unified, err := sys.CgroupLayout()
	if err != nil {
		t.Fatal(err)
	}

	if mode == sys.CgroupLegacy {
		testutil.SkipOrFail(t, "needs a cgroup2 hierarchy")
	}

	return unified
}

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()

	cmd := exec.Command("sleep", "1000")

	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	return cmd
}

// wantProps checks each property's D-Bus signature and value.
func wantProps(t *testing.T, got map[string]dbus.Variant, want map[string]any) {
	t.Helper()

	for name, w := range want {
		v, ok := got[name]
		if !ok {
			t.Errorf("property %s missing", name)
			continue
		}

		wantSig := dbus.SignatureOf(w).String()
		if v.Signature().String() != wantSig {
			t.Errorf("property %s has signature %s, want %s", name, v.Signature(), wantSig)
		}

		if !reflect.DeepEqual(v.Value(), w) {
			t.Errorf("property %s = %#v, want %#v", name, v.Value(), w)
		}
	}
}

func TestSystemdLifecycle(t *testing.T) {
	root := unifiedRoot(t)
	bus := startBus(t)
	fake := startFakeSystemd(t, bus, root)

	name := fmt.Sprintf("test-%d", os.Getpid())
	unit := `berth-test\x2d` + fmt.Sprint(os.Getpid()) + ".scope"
	dir := filepath.Join(root, Slice, unit)

	g, err := New(name, Layout{Mode: sys.CgroupUnified, Unified: root, SystemdBus: bus.addr})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	_, ok := g.(*systemdGroup)
	if !ok || g.NamespacePath() != dir {
		t.Fatalf("New gave %T at %q, want a systemd group at %q", g, g.NamespacePath(), dir)
	}

	// The monitor's order: clear leftovers, create, limits, then AddProc.
	err = g.Remove()
	if err != nil {
		t.Fatalf("Remove of a unit systemd does not know: %v", err)
	}

	err = g.Create()
	if err != nil {
		t.Fatal(err)
	}

	err = g.SetLimits(Limits{MemoryBytes: 256 << 20, CPUs: "2", CPUSet: "0-1", PidsMax: 50})
	if err != nil {
		t.Fatal(err)
	}

	_, err = os.Stat(dir)
	if !os.IsNotExist(err) || len(fake.callsOf("SetUnitProperties")) != 0 {
		t.Fatalf("Create/SetLimits before AddProc made the scope or called systemd (%v)", err)
	}

	cmd := startSleep(t)
	pid := cmd.Process.Pid

	err = g.AddProc(pid)
	if err != nil {
		t.Fatal(err)
	}

	starts := fake.callsOf("StartTransientUnit")
	if len(starts) != 1 {
		t.Fatalf("%d StartTransientUnit calls, want 1", len(starts))
	}

	s := starts[0]
	if s.Sig != "ssa(sv)a(sa(sv))" || s.Unit != unit || s.Mode != "fail" || len(s.Aux) != 0 {
		t.Errorf("StartTransientUnit(%q, %q, aux %v) with signature %s", s.Unit, s.Mode, s.Aux, s.Sig)
	}

	wantProps(t, s.Props, map[string]any{
		"Description":        "Berth container " + name,
		"Slice":              Slice,
		"Delegate":           true,
		"PIDs":               []uint32{uint32(pid)},
		"CollectMode":        "inactive-or-failed",
		"MemoryMax":          uint64(256 << 20),
		"TasksMax":           uint64(50),
		"CPUQuotaPerSecUSec": uint64(2_000_000),
		"CPUQuotaPeriodUSec": uint64(100_000),
		"AllowedCPUs":        []byte{0x03},
	})

	if len(s.Props) != 10 {
		t.Errorf("%d properties sent, want 10: %v", len(s.Props), s.Props)
	}

	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), "0::/"+Slice+"/"+unit+"\n") {
		t.Errorf("process not in the scope: %s", cg)
	}

	procs, err := g.Procs()
	if err != nil || len(procs) != 1 || procs[0] != pid {
		t.Errorf("Procs() = %v, %v; want [%d]", procs, err, pid)
	}

	err = g.Delegate(1000000, 1000000)
	if err != nil {
		t.Fatal(err)
	}

	st, err := os.Stat(dir)
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000000 {
		t.Errorf("scope not delegated: %v", err)
	}

	stats, err := g.Stats()
	if err != nil || stats.Processes != 1 {
		t.Errorf("Stats() = %+v, %v", stats, err)
	}

	// A live update lifts every limit through systemd.
	err = g.SetLimits(Limits{})
	if err != nil {
		t.Fatal(err)
	}

	sets := fake.callsOf("SetUnitProperties")
	if len(sets) != 1 || sets[0].Sig != "sba(sv)" || sets[0].Unit != unit || !sets[0].Flag {
		t.Fatalf("SetUnitProperties calls: %+v", sets)
	}

	wantProps(t, sets[0].Props, map[string]any{
		"MemoryMax":          uint64(math.MaxUint64),
		"TasksMax":           uint64(DefaultPidsMax),
		"CPUQuotaPerSecUSec": uint64(math.MaxUint64),
		"CPUQuotaPeriodUSec": uint64(100_000),
		"AllowedCPUs":        []byte{},
	})

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

	// Remove must kill frozen processes too.
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

	_, err = os.Stat(dir)
	if !os.IsNotExist(err) {
		t.Errorf("%s still exists after Remove (%v)", dir, err)
	}

	stops := fake.callsOf("StopUnit")
	if len(stops) != 2 || stops[1].Sig != "ss" || stops[1].Unit != unit || stops[1].Mode != "replace" {
		t.Errorf("StopUnit calls: %+v", stops)
	}

	resets := fake.callsOf("ResetFailedUnit")
	if len(resets) != 2 || resets[1].Sig != "s" || resets[1].Unit != unit {
		t.Errorf("ResetFailedUnit calls: %+v", resets)
	}

	err = g.Remove()
	if err != nil {
		t.Errorf("second Remove: %v", err)
	}

	// A reboot inside: the same Group starts the scope again.
	cmd2 := startSleep(t)

	err = g.AddProc(cmd2.Process.Pid)
	if err != nil {
		t.Fatalf("AddProc after Remove: %v", err)
	}

	if len(fake.callsOf("StartTransientUnit")) != 2 {
		t.Error("the second start did not go through systemd")
	}
}

// TestSystemdUnitExists: a failed unit of the same name is reset and the
// start retried; a failed start job is an error.
func TestSystemdUnitExists(t *testing.T) {
	root := unifiedRoot(t)
	bus := startBus(t)
	fake := startFakeSystemd(t, bus, root)

	name := fmt.Sprintf("exists-%d", os.Getpid())
	l := Layout{Mode: sys.CgroupUnified, Unified: root, SystemdBus: bus.addr}

	g, err := New(name, l)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	fake.mu.Lock()
	fake.units[UnitName("", name)] = "failed"
	fake.mu.Unlock()

	cmd := startSleep(t)

	err = g.AddProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	if n := len(fake.callsOf("StartTransientUnit")); n != 2 {
		t.Errorf("%d starts, want 2 (UnitExists, then after the reset)", n)
	}

	err = g.Remove()
	if err != nil {
		t.Fatal(err)
	}

	fake.mu.Lock()
	fake.result = "failed"
	fake.mu.Unlock()

	g2, _ := New(name, l)

	err = g2.AddProc(startSleep(t).Process.Pid)
	if err == nil || !strings.Contains(err.Error(), `ended "failed"`) {
		t.Errorf("AddProc with a failed start job: %v", err)
	}
}

// TestSystemdReconnect restarts dbus-daemon under a running group, once
// during a start job and once between calls. With no bus at all, calls
// fail instead of hanging.
func TestSystemdReconnect(t *testing.T) {
	root := unifiedRoot(t)
	bus := startBus(t)
	fake := startFakeSystemd(t, bus, root)

	g, err := New(fmt.Sprintf("reconnect-%d", os.Getpid()), Layout{Mode: sys.CgroupUnified, Unified: root, SystemdBus: bus.addr})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	// The bus goes away while AddProc waits for the start job: it starts
	// again on a new connection, finds the unit there with its process in
	// it, and succeeds.
	fake.mu.Lock()
	fake.silent = true
	fake.mu.Unlock()

	added := make(chan error, 1)
	pid := startSleep(t).Process.Pid

	go func() { added <- g.AddProc(pid) }()

	err = waitFor(5*time.Second, func() (bool, error) {
		return len(fake.callsOf("StartTransientUnit")) == 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	bus.restart(t)
	fake.attach(t, bus)

	err = <-added
	if err != nil {
		t.Fatalf("AddProc across a bus restart: %v", err)
	}

	if n := len(fake.callsOf("StartTransientUnit")); n != 2 {
		t.Errorf("%d starts, want 2 (the retry on the new connection)", n)
	}

	before, _ := buses.get(bus.addr)

	bus.restart(t)
	fake.attach(t, bus)

	err = g.SetLimits(Limits{PidsMax: 99})
	if err != nil {
		t.Fatalf("SetLimits after a bus restart: %v", err)
	}

	after, _ := buses.get(bus.addr)
	if len(fake.callsOf("SetUnitProperties")) != 1 || after == before || before.Connected() {
		t.Errorf("not retried on a new connection")
	}

	// Stop jobs wait for a signal: that must work on the new connection.
	err = g.Remove()
	if err != nil {
		t.Fatalf("Remove after a bus restart: %v", err)
	}

	bus.stop()

	start := time.Now()

	err = g.SetLimits(Limits{})
	if err != nil {
		t.Fatal("SetLimits on a stopped unit needs no bus")
	}

	g2, _ := New("nobus", Layout{Mode: sys.CgroupUnified, Unified: root, SystemdBus: bus.addr})

	err = g2.AddProc(startSleep(t).Process.Pid)
	if err == nil || time.Since(start) > 8*time.Second {
		t.Errorf("AddProc without a bus: %v after %s", err, time.Since(start))
	}
}

// fakeRoot builds a host tree for Detect: run/systemd/system if systemd,
// proc/1/comm, and proc/self/mountinfo with one v1 hierarchy.
func fakeRoot(t *testing.T, systemd bool, comm string) string {
	t.Helper()

	root := t.TempDir()

	if systemd {
		err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	err := os.MkdirAll(filepath.Join(root, "proc/1"), 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(root, "proc/1/comm"), []byte(comm+"\n"), 0o644)
	}

	if err == nil {
		err = os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	}

	if err == nil {
		err = os.WriteFile(filepath.Join(root, "proc/self/mountinfo"),
			[]byte("37 32 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"), 0o644)
	}

	if err != nil {
		t.Fatal(err)
	}

	return root
}

func layoutIs(mode sys.CgroupMode, unified string) func() (sys.CgroupMode, string, error) {
	return func() (sys.CgroupMode, string, error) { return mode, unified, nil }
}

// TestDetectSystemd checks which implementation Detect picks, on fake host
// trees and buses: systemd only on pure cgroup2 with systemd as init and
// answering; a warning and the plain v2 implementation when it does not.
func TestDetectSystemd(t *testing.T) {
	bus := startBus(t) // nothing owns org.freedesktop.systemd1 here yet

	// A socket that accepts and never answers: the probe must time out.
	wedgedDir, err := os.MkdirTemp("", "bwedge")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(wedgedDir) })

	wedged, err := net.Listen("unix", filepath.Join(wedgedDir, "bus"))
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = wedged.Close() })

	unified := layoutIs(sys.CgroupUnified, "/sys/fs/cgroup")
	run := func(root string, layout func() (sys.CgroupMode, string, error), addr string) Layout {
		t.Helper()

		l, err := detect(hostEnv{root: root, layout: layout, bus: addr, probe: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}

		return l
	}

	systemdHost := fakeRoot(t, true, "systemd")

	for _, c := range []struct {
		name string
		root string
		addr string
	}{
		{"no systemd owner on the bus", systemdHost, bus.addr},
		{"no bus socket", systemdHost, "unix:path=" + filepath.Join(wedgedDir, "none")},
		{"wedged bus", systemdHost, "unix:path=" + filepath.Join(wedgedDir, "bus")},
	} {
		start := time.Now()

		l := run(c.root, unified, c.addr)
		if l.SystemdBus != "" || !strings.Contains(l.Warning, "unreachable over D-Bus") || time.Since(start) > 3*time.Second {
			t.Errorf("%s: SystemdBus %q, warning %q after %s", c.name, l.SystemdBus, l.Warning, time.Since(start))
		}

		g, _ := New("c1", l)
		if _, ok := g.(*v2Group); !ok {
			t.Errorf("%s: fallback gave %T, want *v2Group", c.name, g)
		}
	}

	for _, c := range []struct {
		name   string
		root   string
		layout func() (sys.CgroupMode, string, error)
	}{
		{"no /run/systemd/system", fakeRoot(t, false, "systemd"), unified},
		{"PID 1 is not systemd", fakeRoot(t, true, "tini"), unified},
		{"hybrid host", systemdHost, layoutIs(sys.CgroupHybrid, "/sys/fs/cgroup/unified")},
	} {
		l := run(c.root, c.layout, bus.addr)
		if l.SystemdBus != "" || l.Warning != "" {
			t.Errorf("%s: SystemdBus %q, warning %q", c.name, l.SystemdBus, l.Warning)
		}

		if l.Mode == sys.CgroupHybrid && l.V1["memory"] != "/sys/fs/cgroup/memory" {
			t.Errorf("%s: v1 mounts not read from the fake root: %v", c.name, l.V1)
		}
	}

	// Now systemd answers.
	_ = startFakeSystemd(t, bus, t.TempDir())

	l := run(systemdHost, unified, bus.addr)
	if l.SystemdBus != bus.addr || l.Warning != "" {
		t.Fatalf("systemd host: SystemdBus %q, warning %q", l.SystemdBus, l.Warning)
	}

	g, err := New("c1", l)
	if _, ok := g.(*systemdGroup); !ok || err != nil {
		t.Errorf("New on a systemd host gave %T, %v", g, err)
	}

	_, err = New(strings.Repeat("x", 250), l)
	if err == nil {
		t.Error("New accepted a name too long for a unit")
	}
}

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"c1":      "berth-c1.scope",
		"my-ct":   `berth-my\x2dct.scope`,
		".hidden": `berth-\x2ehidden.scope`,
		"a.b:c_d": "berth-a.b:c_d.scope",
		"a b":     `berth-a\x20b.scope`,
		`a\b`:     `berth-a\x5cb.scope`,
		"é":       `berth-\xc3\xa9.scope`,
		"Ab9":     "berth-Ab9.scope",
	} {
		got := UnitName("", in)
		if got != want {
			t.Errorf("UnitName(\"\", %q) = %q, want %q", in, got, want)
		}
	}

	// systemd-escape is the reference where it is installed.
	_, err := exec.LookPath("systemd-escape")
	if err == nil {
		for _, in := range []string{"my-ct", ".hidden", "a b", "x_y.z"} {
			out, err := exec.Command("systemd-escape", in).Output()
			if err != nil {
				t.Fatal(err)
			}

			if escapeUnitName(in) != strings.TrimSpace(string(out)) {
				t.Errorf("escapeUnitName(%q) = %q, systemd-escape says %q", in, escapeUnitName(in), out)
			}
		}
	}
}

func TestCPUMask(t *testing.T) {
	for in, want := range map[string][]byte{
		"":       {},
		"0":      {0x01},
		"0-1":    {0x03},
		"0,2":    {0x05},
		"8":      {0x00, 0x01},
		"0-9":    {0xff, 0x03},
		"3,1-2":  {0x0e},
		"15,0-0": {0x01, 0x80},
	} {
		got, err := cpuMask(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("cpuMask(%q) = %#v, %v; want %#v", in, got, err, want)
		}
	}

	for _, bad := range []string{"3-1", "a", "1-", "-1", "1,,2"} {
		_, err := cpuMask(bad)
		if err == nil {
			t.Errorf("cpuMask(%q) succeeded", bad)
		}
	}
}

func TestLimitProps(t *testing.T) {
	props, err := limitProps(Limits{CPUQuotaUs: 25000, CPUPeriodUs: 50000, PidsMax: -1, MemoryBytes: 1 << 30, CPUs: "0,2"})
	if err != nil {
		t.Fatal(err)
	}

	got := map[string]dbus.Variant{}
	for _, p := range props {
		got[p.Name] = p.Value
	}

	wantProps(t, got, map[string]any{
		"MemoryMax":          uint64(1 << 30),
		"TasksMax":           uint64(math.MaxUint64),
		"CPUQuotaPerSecUSec": uint64(500_000),
		"CPUQuotaPeriodUSec": uint64(50_000),
		"AllowedCPUs":        []byte{0x05},
	})

	_, err = limitProps(Limits{CPUs: "x"})
	if err == nil {
		t.Error("limitProps accepted a bad cpu list")
	}
}

// TestWithBusRetriesOnce: an operation that loses its connection runs once
// more on a new one, and only once; other errors are not retried.
func TestWithBusRetriesOnce(t *testing.T) {
	bus := startBus(t)
	_ = startFakeSystemd(t, bus, t.TempDir())

	ping := func(c *dbus.Conn) error {
		return c.Object(systemdDest, managerPath).Call("org.freedesktop.DBus.Peer.Ping", dbus.FlagNoAutoStart).Err
	}

	var seen []*dbus.Conn

	err := withBus(bus.addr, func(c *dbus.Conn) error {
		seen = append(seen, c)
		if len(seen) == 1 {
			_ = c.Close() // lost under the call
		}

		return ping(c)
	})
	if err != nil || len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("lost connection: %v after %d attempts", err, len(seen))
	}

	n := 0

	err = withBus(bus.addr, func(c *dbus.Conn) error {
		n++
		_ = c.Close()

		return ping(c)
	})
	if !errors.Is(err, dbus.ErrClosed) || n != 2 {
		t.Errorf("always lost: %v after %d attempts, want ErrClosed after 2", err, n)
	}

	n = 0

	err = withBus(bus.addr, func(c *dbus.Conn) error {
		n++
		return call(c, "NoSuchMethod", nil)
	})
	if err == nil || n != 1 {
		t.Errorf("a plain error: %v after %d attempts, want 1", err, n)
	}
}
