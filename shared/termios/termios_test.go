package termios_test

import (
	"os"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/termios"
	"github.com/berth-dev/berth/test/testutil"
)

func openPty(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()

	ptmx, tty, err := pty.Open()
	if err != nil {
		testutil.SkipOrFail(t, "no pty available: %v", err)
	}

	t.Cleanup(func() {
		_ = tty.Close()
		_ = ptmx.Close()
	})

	return ptmx, tty
}

func lflag(t *testing.T, f *os.File) uint32 {
	t.Helper()

	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}

	return tio.Lflag
}

func TestMakeRawRestore(t *testing.T) {
	_, tty := openPty(t)
	fd := int(tty.Fd())

	if !termios.IsTerminal(fd) {
		t.Fatal("pty slave is not a terminal")
	}

	before := lflag(t, tty)
	if before&(unix.ECHO|unix.ICANON|unix.ISIG) == 0 {
		t.Fatalf("a fresh pty is already raw: lflag %#x", before)
	}

	restore, err := termios.MakeRaw(fd)
	if err != nil {
		t.Fatalf("MakeRaw: %v", err)
	}

	raw := lflag(t, tty)
	if raw&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 {
		t.Errorf("raw mode keeps echo/canonical/signals: lflag %#x", raw)
	}

	err = restore()
	if err != nil {
		t.Fatalf("restore: %v", err)
	}

	if got := lflag(t, tty); got != before {
		t.Errorf("lflag after restore %#x, want %#x", got, before)
	}

	// A second restore (e.g. defer after a signal handler ran) is a no-op,
	// even if something changed the terminal since.
	_, _ = termios.MakeRaw(fd)
	err = restore()
	if err != nil {
		t.Fatalf("second restore: %v", err)
	}

	if got := lflag(t, tty); got == before {
		t.Error("second restore acted again")
	}
}

func TestMakeRawNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()

	if termios.IsTerminal(int(f.Fd())) {
		t.Fatal("/dev/null is a terminal")
	}

	_, err = termios.MakeRaw(int(f.Fd()))
	if err == nil {
		t.Fatal("MakeRaw on /dev/null succeeded")
	}
}

func TestGetSize(t *testing.T) {
	_, tty := openPty(t)

	err := pty.Setsize(tty, &pty.Winsize{Cols: 132, Rows: 43})
	if err != nil {
		t.Fatalf("Setsize: %v", err)
	}

	w, h, err := termios.GetSize(int(tty.Fd()))
	if err != nil || w != 132 || h != 43 {
		t.Fatalf("GetSize = %d, %d, %v; want 132, 43", w, h, err)
	}
}
