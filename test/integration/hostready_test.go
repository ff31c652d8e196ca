package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/tuning"
	"github.com/berth-dev/berth/shared/atomicfile"
	"github.com/berth-dev/berth/test/testutil"
	"golang.org/x/sys/unix"
)

// These tests change host sysctls (berthd's tuning does, and the boot failure needs a spent
// inotify budget); each saves every value it may touch first and restores it in t.Cleanup,
// registered before the change, so a failing test restores too.

func sysctlFile(key string) string {
	return filepath.Join(tuning.ProcSys, strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(t *testing.T, key string) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile(sysctlFile(key))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}

	if err != nil {
		t.Fatal(err)
	}

	v, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}

	return v, true
}

func writeSysctl(key string, v int64) error {
	return os.WriteFile(sysctlFile(key), []byte(strconv.FormatInt(v, 10)), 0o644)
}

// saveSysctls records every sysctl berthd may raise and restores them all in t.Cleanup.
func saveSysctls(t *testing.T) map[string]int64 {
	t.Helper()
	saved := map[string]int64{}
	for _, s := range tuning.Settings {
		if v, ok := readSysctl(t, s.Key); ok {
			saved[s.Key] = v
		}
	}

	t.Cleanup(func() {
		for k, v := range saved {
			if now, _ := readSysctl(t, k); now != v {
				err := writeSysctl(k, v)
				if err != nil {
					t.Errorf("restoring %s to %d: %v", k, v, err)
				}
			}
		}
	})

	return saved
}

// startBare starts a berthd on dir with extra environment (no image imported) and
// registers its cleanup.
func startBare(t *testing.T, dir string, env ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, env: env}
	d.start()
	t.Cleanup(func() { d.destroy() })
	return d
}

func tempStateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "bt-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// TestHostTuning: with core.host_tuning=false berthd changes no sysctl and says what it
// left; by default it raises each limit below production (fs.inotify.max_user_instances
// among them), one log line per change, lowers none, and raises its own RLIMIT_NOFILE.
func TestHostTuning(t *testing.T) {
	requireSetup(t)
	saved := saveSysctls(t)

	// Two limits below production, so that both runs prove something on a tuned host too:
	// one below is enough, and harmless to the host's other containers meanwhile.
	below := map[string]int64{}
	for _, s := range tuning.Settings {
		if s.Key == "fs.inotify.max_user_instances" || s.Key == "fs.aio-max-nr" {
			below[s.Key] = min(saved[s.Key], s.Value-1)
			if err := writeSysctl(s.Key, below[s.Key]); err != nil {
				t.Fatal(err)
			}
		}
	}

	// favordynmods off, as on a stock kernel, so that both runs prove something; the
	// cgroup2 superblock gets back what it had at the end.
	flagsWere, _ := clearDynmods(t)

	// Root's subordinate ids as Debian's lxd package leaves them: 152 containers' worth.
	saveSubIDs(t)
	small := "_lxd:100000:10000001\nroot:100000:10000001\n"
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		if err := os.WriteFile(p, []byte(small), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Off by the server setting, whatever the environment says.
	dir := tempStateDir(t)
	d0, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}

	err = d0.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateNodeConfig(ctx, map[string]string{tuning.ConfigKey: "false"}, nil)
	})
	_ = d0.Close()
	if err != nil {
		t.Fatal(err)
	}

	off := startBare(t, dir, tuning.EnvOff+"=1")
	for k, v := range below {
		if now, _ := readSysctl(t, k); now != v {
			t.Errorf("core.host_tuning=false: %s went from %d to %d", k, v, now)
		}
	}

	off.kill(unix.SIGTERM)
	if l := off.log.String(); !strings.Contains(l, `host tuning off; limits below production left alone" because="core.host_tuning=false"`) ||
		!strings.Contains(l, "fs.inotify.max_user_instances=") || strings.Contains(l, "raised host limit") {
		t.Errorf("berthd with core.host_tuning=false logged:\n%s", tail(l, 30))
	}

	if _, _, on, _ := tuning.Cgroup2Flags("/proc/self/mountinfo"); on {
		t.Errorf("core.host_tuning=false: berthd set %s on the host's cgroup2", tuning.Dynmods)
	}

	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		if b, _ := os.ReadFile(p); string(b) != small {
			t.Errorf("core.host_tuning=false: berthd changed %s to %q", p, b)
		}
	}

	off.start() // for its cleanup: it deletes what the daemon knows

	// On (the default).
	d := startBare(t, tempStateDir(t), tuning.EnvOff+"=1")
	want := map[string]int64{}
	for _, s := range tuning.Settings {
		want[s.Key] = s.Value
	}

	for k := range below {
		if now, _ := readSysctl(t, k); now != want[k] {
			t.Errorf("%s = %d after berthd started, want %d", k, now, want[k])
		}
	}

	for k, v := range saved {
		if now, _ := readSysctl(t, k); now < min(v, want[k]) {
			t.Errorf("%s lowered from %d to %d", k, v, now)
		}
	}

	// Set, and the superblock's other flags kept (a reconfiguration sets them all afresh).
	_, now, on, err := tuning.Cgroup2Flags("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}

	for _, f := range flagsWere {
		if !slices.Contains(now, f) {
			t.Errorf("berthd's host tuning cleared %s on the host's cgroup2", f)
		}
	}

	if !on {
		t.Errorf("berthd did not set %s on the host's cgroup2: its flags are %v", tuning.Dynmods, now)
	}

	// A root range for 1024 containers or more, after the old one, which stays.
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		entries, err := idmap.ReadSubID(p)
		if err != nil {
			t.Fatal(err)
		}

		_, count, _ := idmap.RootRange(entries)
		b, _ := os.ReadFile(p)
		if count < idmap.DensityRootCount || !strings.HasPrefix(string(b), small) {
			t.Errorf("%s after berthd started: %q, want root's range widened to %d ids and the old lines kept", p, b, idmap.DensityRootCount)
		}
	}

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}

	// Without CAP_SYS_RESOURCE (some sandboxes drop it) the hard limit cannot go up: then
	// the soft one must have gone up to it.
	nrOpen, _ := readSysctl(t, "fs.nr_open")
	wantNofile := min(tuning.NofileTarget, nrOpen)
	var ours unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &ours)
	if !hasCap(t, unix.CAP_SYS_RESOURCE) {
		wantNofile = min(wantNofile, int64(ours.Max))
	}

	for _, l := range strings.Split(string(limits), "\n") {
		f := strings.Fields(l)
		if strings.HasPrefix(l, "Max open files") && (len(f) < 5 || limitBelow(f[3], wantNofile) || limitBelow(f[4], wantNofile)) {
			t.Errorf("berthd's %s, want at least %d", l, wantNofile)
		}
	}

	d.kill(unix.SIGTERM)
	line := fmt.Sprintf(`msg="raised host limit" sysctl=fs.inotify.max_user_instances from=%d to=1048576`, below["fs.inotify.max_user_instances"])
	if l := d.log.String(); !strings.Contains(l, line) || strings.Count(l, "sysctl=fs.aio-max-nr") != 1 {
		t.Errorf("berthd's log has no %q (or not one line for fs.aio-max-nr):\n%s", line, tail(l, 30))
	}

	if l := d.log.String(); !strings.Contains(l, `msg="set favordynmods on the host's cgroup2`) {
		t.Errorf("berthd's log does not say it set %s:\n%s", tuning.Dynmods, tail(l, 30))
	}

	d.start()
}

// saveSubIDs restores /etc/subuid and /etc/subgid at cleanup (berthd with host tuning on
// may widen root's range).
func saveSubIDs(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		was, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() {
			if now, _ := os.ReadFile(p); string(now) != string(was) {
				if err := atomicfile.WriteDurable(p, was, 0o644); err != nil {
					t.Errorf("restoring %s: %v", p, err)
				}
			}
		})
	}
}

// clearDynmods clears favordynmods on the host's cgroup2 superblock and restores it at
// cleanup; it returns the superblock's other cgroup2 flags and whether it was set.
func clearDynmods(t *testing.T) ([]string, bool) {
	t.Helper()
	others, was, err := keepDynmods(t)
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}

	_, _, err = tuning.SetDynmods("/proc/self/mountinfo", false)
	if err != nil {
		t.Fatal(err)
	}

	return others, was
}

// keepDynmods restores favordynmods on the host's cgroup2 at cleanup as it is now (a
// daemon with host tuning sets it): it returns the superblock's other cgroup2 flags and
// whether favordynmods is set, or tuning.ErrNoDynmods for a kernel without it.
func keepDynmods(t *testing.T) ([]string, bool, error) {
	t.Helper()
	_, others, on, err := tuning.Cgroup2Flags("/proc/self/mountinfo")
	if errors.Is(err, tuning.ErrNoDynmods) {
		return nil, false, err
	}

	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_, _, err := tuning.SetDynmods("/proc/self/mountinfo", on)
		if err != nil {
			t.Errorf("restoring the host's cgroup2 %s: %v", tuning.Dynmods, err)
		}
	})

	return others, on, nil
}

// hasCap says whether this process has capability c in its effective set.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}

	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<c) != 0
		}
	}

	return false
}

// limitBelow reads a /proc/<pid>/limits value ("unlimited" or a number).
func limitBelow(v string, want int64) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return v != "unlimited" && (err != nil || n < want)
}

// TestDefaultNetworkDensity: a fresh berthd's default network is a /22 (1021 containers),
// clear of the host's other networks.
func TestDefaultNetworkDensity(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startBare(t, tempStateDir(t))
	nw := d.defaultNetwork()
	gw, subnet, err := network.ParseGateway(nw.Config["ipv4.address"])
	if err != nil {
		t.Fatal(err)
	}

	ones, _ := subnet.Mask.Size()
	if ones != network.DefaultPrefix || !subnet.Contains(gw) {
		t.Fatalf("default network %s has ipv4.address %s, want a /%d", nw.Name, nw.Config["ipv4.address"], network.DefaultPrefix)
	}

	others, _ := ip.HostNets(nw.Name)
	for _, o := range others {
		if o.Contains(subnet.IP) || subnet.Contains(o.IP) {
			t.Fatalf("default network %s overlaps the host's %s", subnet, o)
		}
	}

	conf, _ := os.ReadFile(filepath.Join(d.dir, "networks", nw.Name, "dnsmasq.conf"))
	mask := net.IP(subnet.Mask).String()
	if !strings.Contains(string(conf), "dhcp-range="+subnet.IP.String()+",static,"+mask+",") {
		t.Fatalf("dnsmasq.conf does not hand out the /%d:\n%s", ones, conf)
	}
}

// spendInotify makes root's inotify instances run out, as a host with too many containers
// for its fs.inotify.max_user_instances: the limit goes down to the number of inotify
// descriptors on the host (at least root's instances: every instance has one), and a
// goroutine takes whatever headroom remains or is freed meanwhile. Containers count
// against root through the user-namespace hierarchy. The returned func restores the
// limit and frees the instances; it is also registered with t.Cleanup.
func spendInotify(t *testing.T) func() {
	t.Helper()
	const key = "fs.inotify.max_user_instances"
	saved, _ := readSysctl(t, key)
	var fds []int
	stop := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	restore := func() {
		once.Do(func() {
			close(stop)
			<-done
			err := writeSysctl(key, saved)
			if err != nil {
				t.Errorf("restoring %s to %d: %v", key, saved, err)
			}

			for _, fd := range fds {
				_ = unix.Close(fd)
			}
		})
	}

	t.Cleanup(restore)
	err := writeSysctl(key, int64(countInotify()))
	if err != nil {
		t.Fatal(err)
	}

	grab := func() {
		for len(fds) < 8192 {
			fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
			if err != nil {
				return
			}

			fds = append(fds, fd)
		}
	}

	grab()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				grab()
			}
		}
	}()

	return restore
}

// countInotify counts the inotify descriptors of every process on the host.
func countInotify() int {
	n := 0
	fdDirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, dir := range fdDirs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			target, _ := os.Readlink(filepath.Join(dir, e.Name()))
			if target == "anon_inode:inotify" {
				n++
			}
		}
	}

	return n
}

// TestBootFailureReason starts a container on a host whose inotify instances are spent:
// its systemd exits at boot, and the start fails with the reason from the console (not
// an internal error about the NIC that could not follow init), leaving nothing running or
// attached but the console log. With the limit back, the same instance starts.
func TestBootFailureReason(t *testing.T) {
	d := startDaemon(t)
	const name = "bootfail"
	d.berth("init", "debian/12", name)
	nw := d.defaultNetwork()

	// The budget is spent for the start alone: every container start on the host fails
	// meanwhile.
	restore := spendInotify(t)
	t0 := time.Now()
	out, err := d.berthErr("start", name)
	took := time.Since(t0)
	restore()

	t.Logf("start on a spent host failed after %v: %s", took, strings.TrimSpace(out))
	// (The CLI capitalises the message, as lxc does.)
	want := "ontainer init exited during boot: systemd: Too many open files (inotify): raise fs.inotify.max_user_instances"
	if err == nil || !strings.Contains(out, want) || strings.Contains(out, "namespace") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("start on a spent host: %v\n%s\nwant one line with %q", err, out, want)
	}

	// Nothing left: stopped, no monitor, no port on the bridge, no filter, no host end
	// recorded, no cgroup, the root unmounted.
	if st := strings.TrimSpace(d.berth("list", name, "--format", "csv", "-c", "s")); st != "STOPPED" {
		t.Errorf("state after the failed start: %q", st)
	}

	runDir := filepath.Join(d.dir, "instances", name, "run")
	for _, f := range []string{"monitor.sock", "monitor.pid"} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err == nil {
			t.Errorf("%s left in %s", f, runDir)
		}
	}

	links, _ := ip.Links()
	for _, l := range links {
		if l.Master == nw.Name {
			t.Errorf("%s has port %s left", nw.Name, l.Name)
		}
	}

	if ports, _ := firewall.Ports(nw.Name); len(ports) != 0 {
		t.Errorf("port filters left: %v", ports)
	}

	inst, _, err := d.c.GetInstance(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	if h := inst.Config["volatile.eth0.host_name"]; h != "" {
		t.Errorf("volatile.eth0.host_name = %s after the failed start", h)
	}

	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, d.dir+"/") && strings.Contains(l, name) {
			t.Errorf("mount left: %s", l)
		}
	}

	console := d.berth("console", name, "--show-log")
	if !strings.Contains(console, "Failed to create control group inotify object: Too many open files") {
		t.Errorf("console log not kept:\n%s", tail(console, 20))
	}

	// The budget back, the same instance starts and boots.
	d.berth("start", name)
	if st := d.waitRunning(name); st != "running" && st != "degraded" {
		t.Fatalf("after the limit was restored: %s", st)
	}
}
