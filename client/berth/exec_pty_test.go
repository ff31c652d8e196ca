package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// onPty makes os.Stdin and the app's stdout the slave of a new 24x80 pty, as
// when berth runs in a terminal; it returns the master, the slave and what
// the terminal shows.
func onPty(t *testing.T) (ptmx, tty *os.File, screen *lockedBuffer) {
	t.Helper()

	ptmx, tty, err := pty.Open()
	if err != nil {
		testutil.SkipOrFail(t, "opening a pty: %v", err)
	}

	_ = pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 80})

	old := os.Stdin
	os.Stdin = tty
	t.Cleanup(func() {
		os.Stdin = old
		_ = tty.Close()
		_ = ptmx.Close()
	})

	// Drain the master so writes to the slave never block.
	screen = &lockedBuffer{}
	go func() { _, _ = io.Copy(screen, ptmx) }()

	return ptmx, tty, screen
}

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// waitScreen waits up to 10 s for the terminal to show want.
func waitScreen(t *testing.T, screen *lockedBuffer, want string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", want, screen.String())
		}

		time.Sleep(5 * time.Millisecond)
	}
}

func termiosOf(t *testing.T, f *os.File) unix.Termios {
	t.Helper()

	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}

	return *tio
}

// runOnTTY runs berth with the pty slave as stdout (stderr to a buffer).
func runOnTTY(t *testing.T, socket string, tty *os.File, args ...string) (string, int) {
	t.Helper()

	var errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	code := run(ctx, append([]string{"--socket", socket}, args...), newApp(tty, &errOut))

	return errOut.String(), code
}

func TestExecOnTerminal(t *testing.T) {
	s := execFake(t)
	_, tty, screen := onPty(t)
	t.Setenv("TERM", "xterm-256color")

	before := termiosOf(t, tty)
	if before.Lflag&unix.ECHO == 0 {
		t.Fatal("fresh pty has no echo")
	}

	type result struct {
		errOut string
		code   int
	}

	done := make(chan result, 1)
	go func() {
		// wait-resize says "ready", then exits 9 at the first resize.
		errOut, code := runOnTTY(t, s.Socket, tty, "exec", "c1", "--", "wait-resize")
		done <- result{errOut, code}
	}()

	waitScreen(t, screen, "ready\r\n")
	during := termiosOf(t, tty)

	// Resize the local terminal and tell berth, as the kernel would.
	_ = pty.Setsize(tty, &pty.Winsize{Rows: 50, Cols: 132})
	_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)

	select {
	case r := <-done:
		if r.code != 9 {
			t.Fatalf("exit code %d (stderr %q), want 9", r.code, r.errOut)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the resize did not reach the command")
	}

	waitScreen(t, screen, "resized 132x50\r\n")

	if during.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 {
		t.Errorf("terminal not raw while the command ran: lflag %#x", during.Lflag)
	}

	if after := termiosOf(t, tty); after != before {
		t.Errorf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}

	r := execRequests(t, s)
	if len(r) != 1 || !r[0].Interactive || r[0].Width != 80 || r[0].Height != 24 || r[0].Environment["TERM"] != "xterm-256color" {
		t.Fatalf("request %+v", r)
	}
}

func TestExecRestoresTerminalOnError(t *testing.T) {
	s := execFake(t)
	_, tty, _ := onPty(t)
	before := termiosOf(t, tty)

	errOut, code := runOnTTY(t, s.Socket, tty, "exec", "c1", "--", "missing-command")
	if code != 127 || !strings.HasPrefix(errOut, "Error: Command not found") {
		t.Errorf("code %d, stderr %q", code, errOut)
	}

	if after := termiosOf(t, tty); after != before {
		t.Error("terminal not restored after a failed command")
	}

	errOut, code = runOnTTY(t, s.Socket, tty, "exec", "nope", "--", "sh")
	if code != 1 || !strings.HasPrefix(errOut, `Error: Instance "nope" not found`) {
		t.Errorf("code %d, stderr %q", code, errOut)
	}

	if after := termiosOf(t, tty); after != before {
		t.Error("terminal not restored after a failed request")
	}
}

func TestConsoleOnTerminal(t *testing.T) {
	s := execFake(t)
	ptmx, tty, screen := onPty(t)
	before := termiosOf(t, tty)

	type result struct {
		errOut string
		code   int
	}

	done := make(chan result, 1)
	go func() {
		errOut, code := runOnTTY(t, s.Socket, tty, "console", "c1")
		done <- result{errOut, code}
	}()

	// The fake console shows its size and echoes what it gets; the user
	// types, then detaches (before the echo comes back, maybe).
	waitScreen(t, screen, "c1 login: [size 80x24]")
	_, _ = ptmx.Write([]byte("root\x01q"))

	select {
	case r := <-done:
		if r.code != 0 || r.errOut != "" {
			t.Errorf("code %d, stderr %q", r.code, r.errOut)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl+a q did not detach")
	}

	if after := termiosOf(t, tty); after != before {
		t.Error("terminal not restored after detaching")
	}

	found := false
	for _, r := range s.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/console") {
			found = strings.Contains(string(r.Body), `"width":80`) && strings.Contains(string(r.Body), `"type":"console"`)
		}
	}

	if !found {
		t.Error("no console request with the terminal size")
	}
}
