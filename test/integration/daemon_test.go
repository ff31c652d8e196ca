package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// daemon is a berthd running in its own temporary state directory.
type daemon struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
	log *syncBuffer
	c   *client.Client
	env []string // berthd's environment beyond ours; host tuning is off unless a test turns it on
	// netns, when set, is the network namespace (a /run/netns path) berthd runs in: a
	// cluster member's (cluster_helpers_test.go). Its unix socket is a file, reachable
	// from any namespace.
	netns string
	args  []string // berthd's arguments beyond --dir and --debug (--preseed FILE)
}

// startDaemon starts a berthd with a fresh state directory, imports the test image as
// "debian/12", and registers cleanup: every container force-stopped and deleted, the daemon
// stopped, the directory removed, and a check that nothing stays mounted under it.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	requireSetup(t)

	// Short path: monitor sockets live below it and unix socket paths are limited.
	dir, err := os.MkdirTemp("/tmp", "bt-")
	if err != nil {
		t.Fatal(err)
	}

	d := &daemon{t: t, dir: dir}
	d.start()
	t.Cleanup(func() { d.destroy() })

	out := d.berth("image", "import", imagePath, "--alias", "debian/12")
	if !strings.Contains(out, "fingerprint") {
		t.Fatalf("image import said %q", out)
	}

	return d
}

func (d *daemon) start() {
	d.t.Helper()
	err := d.startErr()
	if err != nil {
		d.t.Fatal(err)
	}
}

// startErr is start returning its error: for cleanups, where t.Fatal would end them early.
func (d *daemon) startErr() error {
	d.log = &syncBuffer{}
	args := append([]string{"--dir", d.dir, "--debug"}, d.args...)
	d.cmd = exec.Command(berthdBin, args...)
	if d.netns != "" {
		// nsenter execs berthd: the pid is berthd's own, signals reach it.
		d.cmd = exec.Command("nsenter", append([]string{"--net=" + d.netns, "--", berthdBin}, args...)...)
	}

	d.cmd.Env = append(append(os.Environ(), "BERTH_HOST_TUNING=0"), d.env...)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if dir := os.Getenv("BERTH_TEST_LOGDIR"); dir != "" {
		// Also to a file, readable while the test runs (or hangs).
		f, err := os.OpenFile(filepath.Join(dir, filepath.Base(d.dir)+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err == nil {
			// Left open: the copier writes to it until berthd exits (one per start).
			d.cmd.Stdout = io.MultiWriter(d.log, f)
			d.cmd.Stderr = d.cmd.Stdout
		}
	}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := d.cmd.Start()
	if err != nil {
		d.cmd = nil
		return err
	}

	socket := filepath.Join(d.dir, "unix.socket")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := client.Connect(socket)
		if err == nil {
			_, _, err = c.GetServer(context.Background())
			if err == nil {
				d.c = c
				return nil
			}
		}

		time.Sleep(20 * time.Millisecond)
	}

	return fmt.Errorf("berthd did not come up:\n%s", d.log.String())
}

// kill stops the daemon with the given signal and waits for it.
func (d *daemon) kill(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}

	_ = d.cmd.Process.Signal(sig)
	_ = d.cmd.Wait()
	d.cmd = nil
}

func (d *daemon) destroy() {
	if d.cmd == nil {
		// The test stopped the daemon (and may have failed before restarting it): start it
		// again so that it cleans up the containers it still knows.
		func() {
			defer func() { _ = recover() }()
			d.start()
		}()
	}

	if d.cmd != nil {
		names, _ := d.c.GetInstanceNames(context.Background())
		for _, n := range names {
			_, _ = d.berthErr("delete", "-f", n)
		}

		d.kill(syscall.SIGTERM)
	}

	if d.t.Failed() && d.log != nil {
		d.t.Logf("berthd log:\n%s", tail(d.log.String(), 60))
	}

	for _, m := range mountsNaming(hostMounts(d.t), d.dir+"/") {
		d.t.Errorf("mount left behind: %s (%s from %s, %s)", m.MountPoint, m.FSType, m.Source, m.SuperOptions)
		_ = syscall.Unmount(m.MountPoint, syscall.MNT_DETACH)
	}

	d.removeCgroupParent()

	_ = os.RemoveAll(d.dir)
	// Networks outlive berthd on purpose; once the state directory is gone they are orphans.
	network.RemoveOrphans(slog.New(slog.NewTextHandler(io.Discard, nil)))
	network.RemoveOrphanDnsmasqs(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// removeCgroupParent removes the daemon's own cgroup parent directories
// (cgroup.ParentFor): every container is deleted by now, so one that is not
// empty is a leak.
func (d *daemon) removeCgroupParent() {
	l, err := cgroup.Detect()
	if err != nil {
		return
	}

	l.Parent = cgroup.ParentFor(d.dir)

	err = l.RemoveParent()
	if err != nil {
		d.t.Errorf("cgroup left behind: %v", err)
	}
}

// berth runs the CLI against this daemon and fails the test on a non-zero exit.
func (d *daemon) berth(args ...string) string {
	d.t.Helper()
	out, err := d.berthErr(args...)
	if err != nil {
		d.t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	return out
}

func (d *daemon) berthErr(args ...string) (string, error) {
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// raw sends a request to the API and returns the status and decoded envelope.
func (d *daemon) raw(method, path string, body io.Reader) (int, api.Response) {
	d.t.Helper()
	code, env, _ := d.rawH(method, path, body, nil)
	return code, env
}

// initPID returns the host pid of a running instance's systemd.
func (d *daemon) initPID(name string) int {
	d.t.Helper()
	st, err := d.c.GetInstanceState(context.Background(), name)
	if err != nil {
		d.t.Fatal(err)
	}

	if st.Pid == 0 {
		d.t.Fatalf("instance %s has no init pid (status %s)", name, st.Status)
	}

	return int(st.Pid)
}

// inside runs a command in every namespace of the instance (util-linux nsenter; the exec
// API arrives with its own issue and tests).
func (d *daemon) inside(name string, args ...string) (string, error) {
	pid := d.initPID(name)
	full := append([]string{"-t", fmt.Sprint(pid), "-a", "--"}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitRunning waits up to 90 s for systemd inside to finish booting and returns its
// verdict ("running", "degraded"), or what went wrong.
func (d *daemon) waitRunning(name string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := testutil.WaitSystemd(ctx, d.initPID(name))
	if err != nil {
		return err.Error()
	}

	return out
}

// syncBuffer is a buffer written by one goroutine (a process's output copier, a pty
// reader) while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits up to 10 s for the daemon's log to contain want: the daemon writes a
// request's audit line before it answers, but the line reaches d.log through a pipe.
func (d *daemon) waitLog(want string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.log.String(), want) {
		if time.Now().After(deadline) {
			return false
		}

		time.Sleep(20 * time.Millisecond)
	}

	return true
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return strings.Join(lines, "\n")
}

// initPIDFromFile reads an instance's init pid without the API (the daemon may be down):
// the first child of its monitor.
func (d *daemon) initPIDFromFile(name string) int {
	d.t.Helper()
	mon := readPID(d.t, filepath.Join(d.dir, "instances", name, "run", "monitor.pid"))
	// Any thread of the (Go) monitor may have forked init: read every task's children.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", mon))
	var f []string
	for _, p := range tasks {
		data, _ := os.ReadFile(p)
		f = append(f, strings.Fields(string(data))...)
	}

	if len(f) == 0 {
		d.t.Fatalf("monitor %d of %s has no child", mon, name)
	}

	pid, _ := strconv.Atoi(f[0])
	return pid
}

// removeRow deletes an instance's DB row behind the daemon's back (it must be stopped),
// as if the create had crashed before writing it.
func removeRow(t *testing.T, dir, name string) {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}

	defer store.Close()
	err = store.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteInstance(ctx, name)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// alive reports whether pid still runs after waiting up to wait for it to end. A zombie
// (ended, not yet reaped by whoever inherited it) counts as ended.
func alive(pid int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if !testutil.Running(pid) {
			return false
		}

		if time.Now().After(deadline) {
			return true
		}

		time.Sleep(20 * time.Millisecond)
	}
}
