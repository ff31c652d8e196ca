package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/berth-dev/berth/test/testutil"
)

// The CLI side of exec, shell and console, driven like a user would: through a
// real pseudo-terminal for the interactive paths, pipes for the others.

// cliSession is the berth CLI running on a pty.
type cliSession struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	out  *syncBuffer
	done chan struct{} // closed when the reader hit EOF/EIO (the CLI is gone)
}

// startOnPty runs berth with args, its stdio on a new 24x80 pty, as the
// session leader with the pty as controlling terminal (so it gets SIGWINCH).
func (d *daemon) startOnPty(args ...string) *cliSession {
	d.t.Helper()
	return startOnPtyEnv(d.t, []string{"BERTH_DIR=" + d.dir}, args...)
}

// startOnPtyEnv is startOnPty with the CLI's environment (beside the test's own) given.
func startOnPtyEnv(t *testing.T, env []string, args ...string) *cliSession {
	t.Helper()

	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(append(os.Environ(), env...), "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		testutil.SkipOrFail(t, "starting berth on a pty: %v", err)
	}

	s := &cliSession{t: t, cmd: cmd, ptmx: ptmx, out: &syncBuffer{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			_, _ = s.out.Write(buf[:n])

			if err != nil {
				return
			}
		}
	}()

	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}

		_ = ptmx.Close()
	})

	return s
}

func (s *cliSession) send(text string) {
	s.t.Helper()

	_, err := s.ptmx.Write([]byte(text))
	if err != nil {
		s.t.Fatalf("writing to the pty: %v", err)
	}
}

// expect waits until the output after offset from contains want and
// returns the offset just past it.
func (s *cliSession) expect(from int, want string, timeout time.Duration) int {
	s.t.Helper()

	deadline := time.Now().Add(timeout)
	for {
		out := s.out.String()
		if from > len(out) {
			from = len(out)
		}

		i := strings.Index(out[from:], want)
		if i >= 0 {
			return from + i + len(want)
		}

		if time.Now().After(deadline) {
			s.t.Fatalf("no %q on the terminal within %s; got:\n%q", want, timeout, tail(out[from:], 20))
		}

		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the CLI to exit and returns its exit code.
func (s *cliSession) wait(timeout time.Duration) int {
	s.t.Helper()

	errc := make(chan error, 1)
	go func() { errc <- s.cmd.Wait() }()

	select {
	case err := <-errc:
		// Read what is still buffered in the pty: the reader ends at EIO
		// once the last slave fd (the CLI's) is closed.
		select {
		case <-s.done:
		case <-time.After(2 * time.Second):
		}

		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}

		if err != nil {
			s.t.Fatalf("waiting for berth: %v", err)
		}

		return 0
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		s.t.Fatalf("berth still running after %s; terminal:\n%q", timeout, tail(s.out.String(), 20))
	}

	return -1
}

// berthPipes runs berth with stdin from in (nil: /dev/null) and returns
// stdout, stderr and the exit code.
func (d *daemon) berthPipes(in io.Reader, args ...string) (string, string, int) {
	d.t.Helper()

	var out, errOut bytes.Buffer
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
	cmd.Stdin = in
	cmd.Stdout = &out
	cmd.Stderr = &errOut

	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		d.t.Fatalf("running berth %v: %v", args, err)
	}

	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func TestCLIExec(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1")
	d.waitRunning("c1")

	t.Run("separate-streams-and-exit-code", func(t *testing.T) {
		d := *d
		d.t = t
		out, errOut, code := d.berthPipes(nil, "exec", "c1", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("stdout %q, stderr %q, code %d; want out, err, 3", out, errOut, code)
		}

		out, errOut, code = d.berthPipes(nil, "exec", "c1", "--", "true")
		if out != "" || errOut != "" || code != 0 {
			t.Errorf("true: stdout %q, stderr %q, code %d", out, errOut, code)
		}
	})

	t.Run("stdin-1MiB", func(t *testing.T) {
		d := *d
		d.t = t
		in := make([]byte, 1<<20)
		_, _ = rand.Read(in)
		out, errOut, code := d.berthPipes(bytes.NewReader(in), "exec", "c1", "--", "cat")
		if code != 0 || errOut != "" || out != string(in) {
			t.Errorf("cat: code %d, stderr %q, %d bytes back (intact: %v)", code, errOut, len(out), out == string(in))
		}
	})

	t.Run("user-cwd-env", func(t *testing.T) {
		d := *d
		d.t = t
		out, errOut, code := d.berthPipes(nil, "exec", "c1", "--user", "1000", "--group", "1000", "--cwd", "/tmp", "--env", "FOO=bar baz",
			"--", "sh", "-c", `echo "$(id -u):$(id -g):$(pwd):$FOO"`)
		if out != "1000:1000:/tmp:bar baz\n" || code != 0 {
			t.Errorf("stdout %q, stderr %q, code %d", out, errOut, code)
		}
	})

	t.Run("signal-relayed", func(t *testing.T) {
		d := *d
		d.t = t
		cmd := exec.Command(berthBin, "exec", "c1", "--", "sleep", "100")
		cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
		err := cmd.Start()
		if err != nil {
			t.Fatal(err)
		}

		// Give the command time to start, then Ctrl-C the non-interactive CLI.
		waitForInside(t, &d, "c1", "sleep 100")
		_ = cmd.Process.Signal(syscall.SIGINT)

		start := time.Now()
		_ = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("exit code %d after SIGINT, want 130", code)
		}

		if time.Since(start) > 10*time.Second {
			t.Errorf("SIGINT took %s to stop sleep", time.Since(start))
		}
	})

	t.Run("not-found", func(t *testing.T) {
		d := *d
		d.t = t
		_, errOut, code := d.berthPipes(nil, "exec", "c1", "--", "/no/such/command")
		if code != 127 || !strings.HasPrefix(errOut, "Error: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("code %d, stderr %q; want 127 and one Error line", code, errOut)
		}

		_, errOut, code = d.berthPipes(nil, "exec", "nope", "--", "true")
		if code != 1 || !strings.HasPrefix(errOut, "Error: ") {
			t.Errorf("missing instance: code %d, stderr %q", code, errOut)
		}
	})

	t.Run("interactive-pty", func(t *testing.T) {
		d := *d
		d.t = t
		s := d.startOnPty("exec", "c1", "--", "sh")
		s.send("tty; stty size; echo $TERM\n")
		at := s.expect(0, "/dev/pts/", 10*time.Second)
		at = s.expect(at, "24 80", 5*time.Second)
		at = s.expect(at, "xterm", 5*time.Second)

		err := pty.Setsize(s.ptmx, &pty.Winsize{Rows: 50, Cols: 132})
		if err != nil {
			t.Fatal(err)
		}

		// The resize travels as a control message; poll until it landed.
		deadline := time.Now().Add(5 * time.Second)
		for {
			s.send("stty size\n")
			time.Sleep(100 * time.Millisecond)
			if strings.Contains(s.out.String()[at:], "50 132") || time.Now().After(deadline) {
				break
			}
		}

		at = s.expect(at, "50 132", time.Second)

		// Ctrl-C is a byte for the remote terminal, which interrupts sleep.
		s.send("sleep 100\n")
		time.Sleep(300 * time.Millisecond)
		s.send("\x03")
		s.send("echo after-$((40+2))\n")
		s.expect(at, "after-42", 5*time.Second)

		s.send("exit 7\n")
		if code := s.wait(10 * time.Second); code != 7 {
			t.Errorf("exit code %d, want 7", code)
		}
	})

	t.Run("forced-pty", func(t *testing.T) {
		d := *d
		d.t = t
		s := d.startOnPty("exec", "-t", "c1", "--", "sh", "-c", "tty; stty size")
		if code := s.wait(10 * time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}

		out := s.out.String()
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "24 80") {
			t.Errorf("terminal output %q", out)
		}

		// Non-interactive on the same terminal: no pty inside.
		out, _, code := d.berthPipes(nil, "exec", "-T", "c1", "--", "sh", "-c", "tty || true")
		if !strings.Contains(out, "not a tty") || code != 0 {
			t.Errorf("-T: stdout %q, code %d", out, code)
		}
	})

	t.Run("shell", func(t *testing.T) {
		d := *d
		d.t = t
		s := d.startOnPty("shell", "c1")
		s.send("echo \"$HOME:$(id -un):$0\"\n")
		s.expect(0, "/root:root:-", 10*time.Second)
		s.send("exit\n")
		if code := s.wait(10 * time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}

		d.berth("exec", "c1", "--", "useradd", "-m", "-s", "/bin/bash", "alice")
		s = d.startOnPty("shell", "c1", "--user", "alice")
		s.send("echo \"$HOME:$(id -un)\"; exit 5\n")
		s.expect(0, "/home/alice:alice", 10*time.Second)
		if code := s.wait(10 * time.Second); code != 5 {
			t.Errorf("exit code %d, want 5", code)
		}

		_, errOut, code := d.berthPipes(nil, "shell", "c1", "--user", "nobody-here")
		if code == 0 || !strings.Contains(errOut, "unknown user") {
			t.Errorf("unknown user: code %d, stderr %q", code, errOut)
		}
	})

	t.Run("console", func(t *testing.T) {
		d := *d
		d.t = t
		out, errOut, code := d.berthPipes(nil, "console", "c1", "--show-log")
		if code != 0 || !strings.HasPrefix(out, "\nConsole log:\n\n") || !strings.Contains(out, "Reached target") {
			t.Errorf("--show-log: code %d, stderr %q, stdout %q", code, errOut, tail(out, 10))
		}

		_, errOut, code = d.berthPipes(nil, "console", "c1")
		if code != 1 || !strings.Contains(errOut, "terminal") {
			t.Errorf("console without a terminal: code %d, stderr %q", code, errOut)
		}

		s := d.startOnPty("console", "c1")
		at := s.expect(0, "To detach from the console, press: <ctrl>+a q", 5*time.Second)
		// getty prints a fresh prompt on an empty login.
		s.send("\r")
		s.expect(at, "login:", 10*time.Second)
		s.send("\x01q")
		if code := s.wait(5 * time.Second); code != 0 {
			t.Errorf("detach exit code %d, want 0", code)
		}
	})
}

// waitForInside waits until a process whose command line contains pattern
// runs in the container.
func waitForInside(t *testing.T, d *daemon, name, pattern string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := d.inside(name, "sh", "-c", `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' <"$f"; echo; done`)
		if strings.Contains(out, pattern) {
			return
		}

		time.Sleep(50 * time.Millisecond)
	}

	t.Fatalf("%q never ran in %s", pattern, name)
}
