package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
	"github.com/berth-dev/berth/test/testutil"
)

// privateLXD is Debian's real LXD 5.0.2 (package lxd) in its own LXD_DIR, listening on
// HTTPS on a free loopback port: the reference server the CLI's remote code is checked
// against besides berthd. No managed network (nothing to firewall, nothing leaves
// the machine) and a dir pool in its own directory.
type privateLXD struct {
	dir  string // d: LXD_DIR, p: the pool, c: the server-side lxc's LXD_CONF
	addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
}

const privateLXDPreseed = `config:
  core.https_address: %s
  images.auto_update_interval: "0"
storage_pools:
- name: default
  driver: dir
  config:
    source: %s
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
`

// startPrivateLXD starts and initialises an LXD, stopped and removed in t.Cleanup. A
// missing lxd binary fails the test in strict mode (CI), else skips it.
func startPrivateLXD(t *testing.T) *privateLXD {
	t.Helper()

	testutil.RequireRoot(t, "run LXD")
	testutil.LookPath(t, "lxd", "Debian package lxd; make deps")
	testutil.LookPath(t, "lxc", "Debian package lxd-client; make deps")

	// Short: LXD puts unix sockets under it.
	dir, err := os.MkdirTemp("/tmp", "lxr-")
	if err != nil {
		t.Fatal(err)
	}

	l := &privateLXD{dir: dir, addr: freeLoopbackAddr(t)}
	t.Cleanup(func() {
		for _, p := range l.close() {
			t.Errorf("LXD cleanup: %s", p)
		}
	})

	for _, sub := range []string{"d", "p", "c"} {
		err = os.Mkdir(filepath.Join(dir, sub), 0o711)
		if err != nil {
			t.Fatal(err)
		}
	}

	out, err := os.Create(filepath.Join(dir, "lxd.out"))
	if err != nil {
		t.Fatal(err)
	}

	defer out.Close()

	l.cmd = exec.Command("lxd", "--group", "root", "--logfile", filepath.Join(dir, "lxd.log"))
	// Proxies pointing at a closed port: LXD fetches instance types from the internet at
	// start, and that request must fail here rather than leave the machine.
	l.cmd.Env = append(os.Environ(), "LXD_DIR="+l.lxdDir(),
		"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", "no_proxy=")
	l.cmd.Stdout, l.cmd.Stderr = out, out
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	err = l.cmd.Start()
	if err != nil {
		t.Fatalf("starting lxd: %v", err)
	}

	l.done = make(chan struct{})
	go func() {
		_ = l.cmd.Wait()
		close(l.done)
	}()

	_, err = l.run("lxd", "waitready", "--timeout", "60")
	if err != nil {
		t.Fatalf("waiting for lxd: %v (log: %s)", err, l.logTail())
	}

	preseed := fmt.Sprintf(privateLXDPreseed, l.addr, filepath.Join(dir, "p"))
	_, err = l.runIn(strings.NewReader(preseed), "lxd", "init", "--preseed")
	if err != nil {
		t.Fatalf("initialising lxd: %v (log: %s)", err, l.logTail())
	}

	return l
}

func (l *privateLXD) lxdDir() string { return filepath.Join(l.dir, "d") }

// url is the HTTPS address the CLI adds.
func (l *privateLXD) url() string { return "https://" + l.addr }

// lxc runs the server-side, fully trusted client (over the unix socket).
func (l *privateLXD) lxc(args ...string) (string, error) {
	return l.run("lxc", args...)
}

func (l *privateLXD) run(name string, args ...string) (string, error) {
	return l.runIn(nil, name, args...)
}

func (l *privateLXD) runIn(in *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LXD_DIR="+l.lxdDir(), "LXD_CONF="+filepath.Join(l.dir, "c"))
	if in != nil {
		cmd.Stdin = in
	}

	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}

	return string(out), nil
}

// token makes a join token with `lxc config trust add --name NAME -q`.
func (l *privateLXD) token(t *testing.T, name string) string {
	t.Helper()

	out, err := l.lxc("config", "trust", "add", "--name", name, "-q")
	if err != nil {
		t.Fatal(err)
	}

	// A fresh LXD_CONF makes lxc print a first-run hint before the token.
	lines := strings.Fields(out)
	return lines[len(lines)-1]
}

// createEmpty creates an instance without a root filesystem (never started).
func (l *privateLXD) createEmpty(t *testing.T, name string) {
	t.Helper()

	_, err := l.lxc("init", "--empty", name)
	if err != nil {
		t.Fatal(err)
	}
}

func (l *privateLXD) logTail() string {
	data, _ := os.ReadFile(filepath.Join(l.dir, "lxd.log"))
	more, _ := os.ReadFile(filepath.Join(l.dir, "lxd.out"))
	return tail(string(data)+string(more), 5)
}

// close deletes the instances, stops the daemon by its pid (SIGTERM, then SIGKILL),
// unmounts what it left under its directory and removes the directory. It returns what
// it could not clean.
func (l *privateLXD) close() []string {
	var problems []string

	if l.done != nil {
		out, err := l.lxc("list", "--format", "csv", "-c", "n")
		if err == nil {
			for _, n := range strings.Fields(out) {
				_, err := l.lxc("delete", "-f", n)
				if err != nil {
					problems = append(problems, err.Error())
				}
			}
		}

		_ = l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.done:
		case <-time.After(30 * time.Second):
			_ = l.cmd.Process.Kill()
			<-l.done
			problems = append(problems, "lxd ignored SIGTERM for 30 s, killed")
		}
	}

	for i := 0; i < 3; i++ {
		mounts := lxdMountsUnder(l.dir)
		if len(mounts) == 0 {
			break
		}

		for j := len(mounts) - 1; j >= 0; j-- {
			_ = unix.Unmount(mounts[j], unix.MNT_DETACH)
		}
	}

	// Never remove a tree with something still mounted in it.
	if left := lxdMountsUnder(l.dir); len(left) > 0 {
		return append(problems, fmt.Sprintf("still mounted, %s kept: %s", l.dir, strings.Join(left, " ")))
	}

	err := os.RemoveAll(l.dir)
	if err != nil {
		problems = append(problems, err.Error())
	}

	return problems
}

func lxdMountsUnder(dir string) []string {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil
	}

	return mountinfo.Under(mounts, dir)
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	addr := ln.Addr().String()
	_ = ln.Close()

	return addr
}
