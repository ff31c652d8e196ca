package nsexec

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/test/testutil"
)

func newServer(t *testing.T, o ServerOptions) *Server {
	t.Helper()

	o.Exe = testExe(t)

	s, err := StartServer(o)
	if err != nil {
		t.Fatalf("starting exec server: %v", err)
	}

	t.Cleanup(func() {
		s.Close()
		<-s.Done()
	})

	return s
}

func serverRun(s *Server) starter {
	return func(_ *testing.T, _ int, o Options) (*Process, error) { return s.Start(o) }
}

// The server is outside the container's pid namespace (nothing inside can
// see or signal it) but in its other namespaces.
func TestServerIsInvisibleInside(t *testing.T) {
	pid := target(t)
	s := newServer(t, ServerOptions{InitPID: pid})

	ns := func(p, n string) string {
		l, err := os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", p, n))
		if err != nil {
			t.Fatal(err)
		}

		return l
	}

	spid, tpid := fmt.Sprint(s.Pid()), fmt.Sprint(pid)

	if ns(spid, "pid") != ns("self", "pid") || ns(spid, "pid") == ns(tpid, "pid") {
		t.Errorf("server in pid namespace %s (ours %s, the container's %s)", ns(spid, "pid"), ns("self", "pid"), ns(tpid, "pid"))
	}

	for _, n := range []string{"user", "mnt", "net", "uts", "ipc", "cgroup"} {
		if ns(spid, n) != ns(tpid, n) {
			t.Errorf("server's %s namespace %s, the container's %s", n, ns(spid, n), ns(tpid, n))
		}
	}
}

func TestServerConcurrentCommands(t *testing.T) {
	pid := target(t)
	s := newServer(t, ServerOptions{InitPID: pid})

	var wg sync.WaitGroup

	errs := make(chan error, 20)

	for i := range 20 {
		wg.Add(1)

		go func() {
			defer wg.Done()

			out, _, code, err := run(t, serverRun(s), pid, Options{Command: []string{"sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i)}})
			if err != nil || code != i || out != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Errorf("command %d: %q, code %d, %v", i, out, code, err)
			}
		}()
	}

	wg.Wait()
	close(errs)

	for err := range errs {
		t.Error(err)
	}
}

func TestServerSignalAndRelativeCommand(t *testing.T) {
	pid := target(t)
	s := newServer(t, ServerOptions{InitPID: pid})

	p, err := s.Start(Options{Command: []string{"sleep", "100"}, Cwd: "/", Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}

	err = p.Signal(syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}

	code, err := p.Wait()
	if err != nil || code != 128+int(syscall.SIGTERM) {
		t.Errorf("after SIGTERM: code %d, %v", code, err)
	}

	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal after exit: %v", err)
	}

	// ./script resolves against the command's cwd, not the server's.
	dir, err := os.MkdirTemp("", "berth-nsexec-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// The command is the target's root, a stranger to our files.
	err = os.Chmod(dir, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	err = os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\necho hi from $PWD\n"), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	out, stderr, code, err := run(t, serverRun(s), pid, Options{Command: []string{"./hello"}, Cwd: dir})
	if err != nil || code != 0 || out != "hi from "+dir+"\n" {
		t.Errorf("./hello in %s: %q %q, code %d, %v", dir, out, stderr, code, err)
	}
}

func TestServerEndsWithInit(t *testing.T) {
	pid := target(t)
	s := newServer(t, ServerOptions{InitPID: pid})

	p, err := s.Start(Options{Command: []string{"sleep", "100"}, Cwd: "/", Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}

	err = syscall.Kill(pid, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}

	// The pid namespace died with init, and the server says how.
	code, err := p.Wait()
	if err != nil || code != 128+int(syscall.SIGKILL) {
		t.Errorf("command of a dead container: code %d, %v", code, err)
	}

	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("exec server outlived init")
	}

	_, err = s.Start(Options{Command: []string{"true"}})
	if !errors.Is(err, ErrServerGone) {
		t.Errorf("start after init exited: %v", err)
	}
}

func TestServerIdleTimeout(t *testing.T) {
	pid := target(t)
	s := newServer(t, ServerOptions{InitPID: pid, IdleTimeout: 200 * time.Millisecond})

	// A running command keeps it.
	p, err := s.Start(Options{Command: []string{"sleep", "0.5"}, Cwd: "/", Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-s.Done():
		t.Fatal("closed while a command ran")
	case <-time.After(400 * time.Millisecond):
	}

	code, err := p.Wait()
	if err != nil || code != 0 {
		t.Fatalf("sleep: %d, %v", code, err)
	}

	select {
	case <-s.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("idle server not closed")
	}
}

// TestServerCgroup: commands are born in the cgroup2 group given, while the
// server stays where it was.
func TestServerCgroup(t *testing.T) {
	l, err := cgroup.Detect()
	if err != nil || l.Unified == "" {
		testutil.SkipOrFail(t, "needs a cgroup2 hierarchy: %v", err)
	}

	own := ownCgroup2(t)
	name := fmt.Sprintf("berth-nsexec-test-%d", os.Getpid())
	dir := filepath.Join(l.Unified, own, name)

	err = os.Mkdir(dir, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.Remove(dir) })

	// Created after the target: its cgroup namespace is rooted at our group.
	pid := target(t)

	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	s := newServer(t, ServerOptions{InitPID: pid, Cgroup: f})

	out, stderr, code, err := run(t, serverRun(s), pid, Options{Command: []string{"grep", "^0::", "/proc/self/cgroup"}})
	if err != nil || code != 0 {
		t.Fatalf("exec: %d, %v, %s", code, err, stderr)
	}

	if out != "0::/"+name+"\n" {
		t.Errorf("command's cgroup2 group %q, want /%s", out, name)
	}

	if got := ownCgroup2(t); got != own {
		t.Errorf("our group moved: %s", got)
	}
}

// ownCgroup2 is this process's cgroup2 path.
func ownCgroup2(t *testing.T) string {
	t.Helper()

	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, ok := strings.CutPrefix(sc.Text(), "0::")
		if ok {
			return p
		}
	}

	t.Fatal("no cgroup2 line in /proc/self/cgroup")

	return ""
}

// BenchmarkServerTrue is the server side of an exec: start `true` through a
// warm exec server and wait for it.
func BenchmarkServerTrue(b *testing.B) { benchmarkServerTrue(b, nil) }

// BenchmarkServerTrueSeccomp is BenchmarkServerTrue with the default
// seccomp filter, as every container has: its cost per exec.
func BenchmarkServerTrueSeccomp(b *testing.B) {
	f, err := confine.Compile(confine.DefaultPolicy())
	if err != nil {
		b.Fatal(err)
	}

	benchmarkServerTrue(b, f.Program)
}

func benchmarkServerTrue(b *testing.B, seccomp []byte) {
	pid := target(b)

	s, err := StartServer(ServerOptions{Exe: testExe(b), InitPID: pid, Seccomp: seccomp})
	if err != nil {
		b.Fatal(err)
	}

	defer func() { s.Close(); <-s.Done() }()

	o := Options{Command: []string{"/bin/true"}, Cwd: "/", Env: []string{"PATH=/usr/bin:/bin"}}

	for b.Loop() {
		p, err := s.Start(o)
		if err != nil {
			b.Fatal(err)
		}

		code, err := p.Wait()
		if err != nil || code != 0 {
			b.Fatal(code, err)
		}
	}
}

// BenchmarkHostTrue is the floor BenchmarkServerTrue compares with: `true`
// started and reaped by os/exec on the host.
func BenchmarkHostTrue(b *testing.B) {
	for b.Loop() {
		err := exec.Command("/bin/true").Run()
		if err != nil {
			b.Fatal(err)
		}
	}
}
