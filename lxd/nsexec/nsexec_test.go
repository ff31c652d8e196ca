package nsexec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// The test binary is its own exec helper (runc's init_test.go trick): the
// C constructor has already entered the target when TestMain runs.
func TestMain(m *testing.M) {
	if IsHelper(os.Args) {
		os.Exit(HelperMain())
	}

	if os.Getenv(envProbe) != "" {
		os.Exit(probe())
	}

	os.Exit(m.Run())
}

// target starts a process in new namespaces of every kind, like a
// container's init, and returns its pid.
func target(t testing.TB) int {
	t.Helper()

	return targetCmd(t, "sleep", "600")
}

// targetCmd is target running args.
func targetCmd(t testing.TB, args ...string) int {
	t.Helper()

	testutil.RequireRoot(t, "create and join namespaces")

	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 Namespaces,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 3_100_000, Size: 65536}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 3_100_000, Size: 65536}},
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
	}

	err := cmd.Start()
	if err != nil {
		testutil.SkipOrFail(t, "creating namespaces: %v", err)
	}

	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	return cmd.Process.Pid
}

// starter starts a command in the namespaces of init pid: one shot, or
// through an exec server.
type starter func(t *testing.T, pid int, o Options) (*Process, error)

func startOneShot(t *testing.T, pid int, o Options) (*Process, error) {
	o.Exe, o.InitPID = testExe(t), pid
	return Start(o)
}

// servers are the exec servers of the test, one per target.
var servers = map[int]*Server{}

func startServed(t *testing.T, pid int, o Options) (*Process, error) {
	s := servers[pid]
	if s == nil {
		var err error

		s, err = StartServer(ServerOptions{Exe: testExe(t), InitPID: pid, Seccomp: o.Seccomp})
		if err != nil {
			return nil, err
		}

		servers[pid] = s

		t.Cleanup(func() {
			delete(servers, pid)
			s.Close()
			<-s.Done()
		})
	}

	return s.Start(o)
}

// eachMode runs f once per way of starting commands.
func eachMode(t *testing.T, f func(t *testing.T, start starter)) {
	t.Run("oneshot", func(t *testing.T) { f(t, startOneShot) })
	t.Run("server", func(t *testing.T) { f(t, startServed) })
}

func testExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	return exe
}

// run execs command in pid's namespaces and returns stdout, stderr and the code.
func run(t *testing.T, start starter, pid int, o Options) (string, string, int, error) {
	t.Helper()
	if o.Env == nil {
		o.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	}

	// The target shares the host's files, where /root is not ours.
	if o.Cwd == "" {
		o.Cwd = "/"
	}

	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	o.Stdout, o.Stderr = outW, errW

	defer func() { _ = outR.Close(); _ = errR.Close() }()

	p, err := start(t, pid, o)
	_ = outW.Close()
	_ = errW.Close()

	if err != nil {
		return "", "", -1, err
	}

	var stdout, stderr bytes.Buffer

	done := make(chan struct{})

	go func() { _, _ = io.Copy(&stderr, errR); close(done) }()

	_, _ = io.Copy(&stdout, outR)
	<-done

	code, err := p.Wait()

	return stdout.String(), stderr.String(), code, err
}

func TestJoinsEveryNamespace(t *testing.T) {
	eachMode(t, func(t *testing.T, start starter) { testJoinsEveryNamespace(t, start) })
}

func testJoinsEveryNamespace(t *testing.T, start starter) {
	pid := target(t)

	out, stderr, code, err := run(t, start, pid, Options{Command: []string{"sh", "-c",
		"for n in cgroup ipc mnt net pid user uts; do readlink /proc/self/ns/$n; done; id -u; pwd; echo $$"}})
	if err != nil || code != 0 {
		t.Fatalf("exec: code %d, %v, stderr %q", code, err, stderr)
	}

	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("output:\n%s", out)
	}

	for i, n := range []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if lines[i] != want {
			t.Errorf("ns %s: %s, want %s", n, lines[i], want)
		}
	}

	if lines[7] != "0" {
		t.Errorf("uid inside %q, want 0", lines[7])
	}

	if lines[8] != "/" {
		t.Errorf("cwd %q, want /", lines[8])
	}

	// sleep is pid 1 of the new pid namespace; we are someone else in it.
	if lines[9] == "1" || lines[9] == fmt.Sprint(os.Getpid()) {
		t.Errorf("pid inside %q", lines[9])
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	eachMode(t, func(t *testing.T, start starter) { testExitCodesAndErrors(t, start) })
}

func testExitCodesAndErrors(t *testing.T, start starter) {
	pid := target(t)

	_, _, code, err := run(t, start, pid, Options{Command: []string{"sh", "-c", "exit 3"}})
	if err != nil || code != 3 {
		t.Errorf("exit 3: got %d, %v", code, err)
	}

	_, _, code, err = run(t, start, pid, Options{Command: []string{"sh", "-c", "kill -INT $$"}})
	if err != nil || code != 130 {
		t.Errorf("SIGINT: got %d, %v", code, err)
	}

	_, _, _, err = run(t, start, pid, Options{Command: []string{"no-such-command"}})

	var ee *ExecError
	if !errors.As(err, &ee) || ee.Code != 127 {
		t.Errorf("missing command: %v", err)
	}

	_, _, _, err = run(t, start, pid, Options{Command: []string{"/etc"}})
	if !errors.As(err, &ee) || ee.Code != 126 {
		t.Errorf("directory as command: %v", err)
	}

	_, _, _, err = run(t, start, pid, Options{Command: []string{"true"}, Cwd: "/no/such/dir"})
	if err == nil || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("bad cwd: %v", err)
	}
}

func TestCredentialsEnvAndFds(t *testing.T) {
	eachMode(t, func(t *testing.T, start starter) { testCredentialsEnvAndFds(t, start) })
}

func testCredentialsEnvAndFds(t *testing.T, start starter) {
	pid := target(t)

	out, stderr, code, err := run(t, start, pid, Options{
		Command: []string{"sh", "-c", "id -u; id -g; echo $FOO; pwd; ls /proc/self/fd"},
		Env:     []string{"PATH=/usr/bin:/bin", "FOO=bar"},
		UID:     1000, GID: 1000, Cwd: "/tmp",
	})
	if err != nil || code != 0 {
		t.Fatalf("exec: code %d, %v, stderr %q", code, err, stderr)
	}

	// ls lists its own directory fd too (3).
	want := "1000\n1000\nbar\n/tmp\n0\n1\n2\n3\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestHelperIsInertWithoutEnv(t *testing.T) {
	// The test binary itself carries the constructor: without the variable
	// it must have done nothing (we are running), and with a bogus value it
	// must refuse rather than act.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{envFD + "=1"}

	done := make(chan error, 1)

	go func() { done <- cmd.Run() }()

	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("constructor hung")
	}

	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("bogus fd: %v", err)
	}
}

func TestPTY(t *testing.T) {
	eachMode(t, func(t *testing.T, start starter) { testPTY(t, start) })
}

func testPTY(t *testing.T, start starter) {
	pid := target(t)

	p, err := start(t, pid, Options{PTY: true, Width: 100, Height: 40, Cwd: "/",
		Command: []string{"sh", "-c", "stty size; test -t 0 && echo tty"},
		Env:     []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}

	m := p.PTY()
	if m == nil {
		t.Fatal("no pty master")
	}

	var out bytes.Buffer

	_, _ = io.Copy(&out, m) // EIO once the slave is gone
	p.ClosePTY()

	code, err := p.Wait()
	if err != nil || code != 0 {
		t.Fatalf("code %d, %v", code, err)
	}

	if got := strings.ReplaceAll(out.String(), "\r", ""); got != "40 100\ntty\n" {
		t.Errorf("got %q", got)
	}

}
