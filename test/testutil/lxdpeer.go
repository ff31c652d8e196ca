package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// LXDPeer is Debian's real LXD 5.0.2 (package lxd) run as a plain process: the
// reference server that Berth's tests and benchmarks compare with and exchange images
// and containers with. It has its own LXD_DIR, a storage pool of its own (dir in its
// directory, or btrfs on a loop file: LXDPeerConfig.Pool), no managed network (nothing to firewall, nothing leaves the machine), image
// auto-update off, and, when asked, an HTTPS listener on a loopback port.
//
// Use it from a test with StartLXDPeerT (cleanup registered, fails loudly in CI when LXD
// cannot start), from elsewhere with StartLXDPeer and Close. Instance names given to it
// should start with Prefix: whatever outlives a failed cleanup (liblxc monitors,
// cgroups) is found by that name and by Dir.
//
//	l := testutil.StartLXDPeerT(t, testutil.LXDPeerConfig{HTTPS: true})
//	out, err := l.Lxc(ctx, "image", "import", tarball, "--alias", "debian12")
//	token, err := l.Token(ctx, "berth")   // for `lxc remote add X <token>`
//	l.URL(), l.CertPEM()                  // for a pinned pull from it
type LXDPeer struct {
	Dir    string // d: LXD_DIR, p: the pool (LXD refuses one inside LXD_DIR), c: the server-side lxc's LXD_CONF, logs
	Prefix string // instance names start with it
	Addr   string // 127.0.0.1:PORT of the HTTPS listener, "" without one

	cmd        *exec.Cmd
	done       chan struct{} // closed once the daemon has been reaped
	exitAccept bool          // the test accepted that the daemon exited (AcceptExit)
}

// ExitedWith reports whether the daemon has exited and its log tail contains s (such as
// a known panic of LXD 5.0.2's own).
func (l *LXDPeer) ExitedWith(s string) bool {
	if l.done == nil {
		return false
	}

	select {
	case <-l.done:
		return strings.Contains(l.LogTail(), s)
	default:
		return false
	}
}

// AcceptExit tells Close that the daemon's exit is expected (a known LXD bug the test
// provoked): the rest of the cleanup is still checked.
func (l *LXDPeer) AcceptExit() { l.exitAccept = true }

// LXDPeerConfig says how to start an LXDPeer.
type LXDPeerConfig struct {
	HTTPS bool // listen on a free loopback port (Addr)
	// Pool is the driver of the default pool: "dir" (the default) in Dir/p, or "btrfs":
	// a loop file LXD makes and formats itself in its LXD_DIR, what `lxd init` offers on
	// a host without ZFS, so instances and snapshots are copy-on-write as Berth's are.
	Pool string
}

// lxdPeerPool is the default pool's part of the preseed.
func lxdPeerPool(driver, dir string) (string, error) {
	switch driver {
	case "", "dir":
		return "  driver: dir\n  config:\n    source: " + filepath.Join(dir, "p") + "\n", nil
	case "btrfs":
		// Sparse: only what the instances write takes space.
		return "  driver: btrfs\n  config:\n    size: 20GiB\n", nil
	}

	return "", fmt.Errorf("LXD peer: unknown pool driver %q", driver)
}

const lxdPeerPreseed = `config:
  images.auto_update_interval: "0"
%sstorage_pools:
- name: default
%sprofiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
`

// StartLXDPeerT starts an LXDPeer for t, closed in t.Cleanup (a leftover is an error of
// t). Without root or the lxd package it skips t, or fails it in strict mode (CI).
func StartLXDPeerT(t testing.TB, cfg LXDPeerConfig) *LXDPeer {
	t.Helper()
	RequireRoot(t, "run LXD")
	LookPath(t, "lxd", "Debian package lxd; make deps")
	LookPath(t, "lxc", "Debian package lxd-client; make deps")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	l, err := StartLXDPeer(ctx, cfg)
	if err != nil {
		t.Fatalf("starting LXD 5.0.2 as a test peer: %v", err)
	}

	t.Cleanup(func() {
		for _, p := range l.Close() {
			t.Errorf("LXD cleanup: %s", p)
		}
	})

	return l
}

// StartLXDPeer starts and initialises the daemon. On error, everything started so far is
// cleaned up already.
func StartLXDPeer(ctx context.Context, cfg LXDPeerConfig) (_ *LXDPeer, err error) {
	// Short: LXD puts unix sockets under it.
	dir, err := os.MkdirTemp("/tmp", "lxp-")
	if err != nil {
		return nil, err
	}

	l := &LXDPeer{Dir: dir, Prefix: "lp" + strings.TrimPrefix(filepath.Base(dir), "lxp-") + "-"}
	defer func() {
		if err != nil {
			problems := l.Close()
			if len(problems) > 0 {
				err = fmt.Errorf("%w (cleanup: %s)", err, strings.Join(problems, "; "))
			}
		}
	}()

	// Containers' root users must be able to traverse down to their rootfs.
	err = os.Chmod(dir, 0o711)
	if err != nil {
		return l, err
	}

	for _, sub := range []string{"d", "p", "c"} {
		err = os.Mkdir(filepath.Join(dir, sub), 0o711)
		if err != nil {
			return l, err
		}
	}

	listen := ""
	if cfg.HTTPS {
		l.Addr, err = freeLoopback()
		if err != nil {
			return l, err
		}

		listen = "  core.https_address: " + l.Addr + "\n"
	}

	out, err := os.Create(filepath.Join(dir, "lxd.out"))
	if err != nil {
		return l, err
	}

	defer out.Close()
	l.cmd = exec.Command("lxd", "--group", "root", "--logfile", filepath.Join(dir, "lxd.log"))
	// The proxy variables point at a closed local port: LXD fetches instance types from
	// images.linuxcontainers.org at start-up, and that request must fail here, not leave.
	l.cmd.Env = append(os.Environ(), "LXD_DIR="+l.LXDDir(),
		"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", "no_proxy=")
	l.cmd.Stdout, l.cmd.Stderr = out, out
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = l.cmd.Start()
	if err != nil {
		return l, fmt.Errorf("starting lxd: %w", err)
	}

	l.done = make(chan struct{})
	go func() {
		_ = l.cmd.Wait()
		close(l.done)
	}()

	_, err = l.Run(ctx, nil, "lxd", "waitready", "--timeout", "60")
	if err != nil {
		return l, fmt.Errorf("waiting for lxd: %w (log: %s)", err, l.LogTail())
	}

	pool, err := lxdPeerPool(cfg.Pool, dir)
	if err != nil {
		return l, err
	}

	preseed := fmt.Sprintf(lxdPeerPreseed, listen, pool)
	_, err = l.Run(ctx, strings.NewReader(preseed), "lxd", "init", "--preseed")
	if err != nil {
		return l, fmt.Errorf("initialising lxd: %w (log: %s)", err, l.LogTail())
	}

	// A fresh LXD_CONF makes the first command print a welcome hint.
	_, _ = l.Lxc(ctx, "list")
	return l, nil
}

// LXDDir is the daemon's LXD_DIR.
func (l *LXDPeer) LXDDir() string { return filepath.Join(l.Dir, "d") }

// ConfDir is the LXD_CONF of the server-side lxc (Lxc).
func (l *LXDPeer) ConfDir() string { return filepath.Join(l.Dir, "c") }

// Env is what a command needs in its environment to be the server-side lxc.
func (l *LXDPeer) Env() []string {
	return []string{"LXD_DIR=" + l.LXDDir(), "LXD_CONF=" + l.ConfDir()}
}

// URL is the HTTPS address a client adds as a remote.
func (l *LXDPeer) URL() string { return "https://" + l.Addr }

// Pid is the daemon's process id.
func (l *LXDPeer) Pid() int { return l.cmd.Process.Pid }

// CertPEM is the daemon's server certificate, what a pinned client expects.
func (l *LXDPeer) CertPEM() (string, error) {
	data, err := os.ReadFile(filepath.Join(l.LXDDir(), "server.crt"))
	return string(data), err
}

// Run runs a command with the server-side environment, stdin from in (may be nil), and
// returns its combined output.
func (l *LXDPeer) Run(ctx context.Context, in io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), l.Env()...)
	if in != nil {
		cmd.Stdin = in
	}

	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}

	return string(out), nil
}

// Lxc runs the stock client as the daemon's administrator (over its unix socket) and
// returns its standard output; the error carries its standard error.
func (l *LXDPeer) Lxc(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "lxc", args...)
	cmd.Env = append(os.Environ(), l.Env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("lxc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}

	return string(out), nil
}

// Token makes a join token (`lxc config trust add --name NAME`) for a client to add the
// daemon as a remote with.
func (l *LXDPeer) Token(ctx context.Context, name string) (string, error) {
	out, err := l.Lxc(ctx, "config", "trust", "add", "--name", name, "-q")
	if err != nil {
		return "", err
	}

	fields := strings.Fields(out)
	if len(fields) == 0 {
		return "", fmt.Errorf("lxc config trust add printed no token")
	}

	return fields[len(fields)-1], nil
}

// LogTail is the last lines of the daemon's logs, for error messages.
func (l *LXDPeer) LogTail() string {
	data, _ := os.ReadFile(filepath.Join(l.Dir, "lxd.log"))
	more, _ := os.ReadFile(filepath.Join(l.Dir, "lxd.out"))
	lines := strings.Split(strings.TrimSpace(string(data)+"\n"+string(more)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}

	return strings.Join(lines, " | ")
}

// Close deletes the daemon's instances, stops it by its pid (SIGTERM, SIGKILL after
// 30 s), then removes what it left: processes and cgroups of our instances, mounts
// under Dir, Dir itself. It returns what it could not clean (or had to clean by force).
func (l *LXDPeer) Close() []string {
	problems := []string{}
	// Generous: LXD deletes slowly on a loaded host (the integration suite runs tests
	// in parallel), and a cut-short delete leaves the peer to the forced cleanup below.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if l.done != nil {
		select {
		case <-l.done:
			if !l.exitAccept {
				problems = append(problems, "lxd had exited before cleanup: "+l.LogTail())
			}
		default:
			out, err := l.Lxc(ctx, "list", "--format", "csv", "-c", "n")
			if err != nil {
				problems = append(problems, err.Error())
			}

			for _, n := range strings.Fields(out) {
				err := l.deleteInstance(ctx, n)
				if err != nil {
					problems = append(problems, err.Error())
				}
			}

			err = l.stop()
			if err != nil {
				problems = append(problems, err.Error())
			}
		}
	}

	// Only if something above failed: liblxc monitors name our directory on their command
	// line, container processes sit in cgroups named after our instances.
	for _, pid := range l.leftoverPIDs() {
		problems = append(problems, fmt.Sprintf("killed leftover process %d", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}

	problems = append(problems, l.removeCgroups()...)

	for i := 0; i < 3; i++ {
		mounts := mountsUnder(l.Dir)
		if len(mounts) == 0 {
			break
		}

		// Deepest last in mountinfo order: unmount in reverse.
		for j := len(mounts) - 1; j >= 0; j-- {
			_ = unix.Unmount(mounts[j], unix.MNT_DETACH)
		}
	}

	// Never remove a tree with something still mounted in it.
	if left := mountsUnder(l.Dir); len(left) > 0 {
		return append(problems, fmt.Sprintf("still mounted, %s kept: %s", l.Dir, strings.Join(left, " ")))
	}

	problems = append(problems, detachLoops(l.Dir)...)

	err := os.RemoveAll(l.Dir)
	if err != nil {
		problems = append(problems, err.Error())
	}

	return problems
}

// deleteInstance force-deletes an instance, retrying while an operation (a failed
// start's stop, an interrupted command's) still holds it.
func (l *LXDPeer) deleteInstance(ctx context.Context, name string) error {
	var err error
	for i := 0; i < 10; i++ {
		_, err = l.Lxc(ctx, "delete", "-f", name)
		if err == nil || !strings.Contains(err.Error(), "busy") {
			return err
		}

		time.Sleep(time.Second)
	}

	return err
}

// stop sends SIGTERM to the daemon (its instances must be gone by then: LXD leaves
// running containers alone on SIGTERM), then SIGKILL if it is still there after 30 s.
func (l *LXDPeer) stop() error {
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
		return nil
	case <-time.After(30 * time.Second):
	}

	_ = l.cmd.Process.Kill()
	<-l.done
	return fmt.Errorf("lxd ignored SIGTERM for 30 s, killed")
}

// leftoverPIDs finds processes started by our daemon that outlived it: liblxc monitors
// ("[lxc monitor] <dir>/containers <name>") and anything in our instances' cgroups.
func (l *LXDPeer) leftoverPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	pids := []int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}

		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cgroups, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if strings.Contains(string(cmdline), l.Dir+"/") || strings.Contains(string(cgroups), "/lxc.payload."+l.Prefix) {
			pids = append(pids, pid)
		}
	}

	return pids
}

// removeCgroups removes cgroups liblxc left for our instances (lxc.payload.<name>,
// lxc.monitor.<name>), children first. liblxc removes them itself on a clean stop.
func (l *LXDPeer) removeCgroups() []string {
	problems := []string{}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		for _, kind := range []string{"payload", "monitor"} {
			tops, _ := filepath.Glob(filepath.Join(root, "lxc."+kind+"."+l.Prefix+"*"))
			for _, top := range tops {
				dirs := []string{}
				_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, p)
					}

					return nil
				})

				sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
				for _, d := range dirs {
					err := os.Remove(d)
					if err != nil {
						problems = append(problems, fmt.Sprintf("removing cgroup: %v", err))
					}
				}

				problems = append(problems, "removed leftover cgroup "+top)
			}
		}

		// liblxc's shared, normally empty, parking cgroup on hybrid hosts; rmdir fails
		// harmlessly if anything still uses it.
		_ = os.Remove(filepath.Join(root, "lxc.pivot"))
	}

	return problems
}

// mountsUnder lists the mount points at or under dir, in mountinfo order.
func mountsUnder(dir string) []string {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil
	}

	return mountinfo.Under(mounts, dir)
}

// freeLoopback returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}

	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}
