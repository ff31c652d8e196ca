package container

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// startupPair is the daemon's end of a startup socket (as a spawned spare's) and the
// spare's.
func startupPair(t *testing.T) (*spawned, *os.File) {
	t.Helper()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}

	_ = unix.SetNonblock(fds[0], true)
	p := &spawned{sock: os.NewFile(uintptr(fds[0]), "startup")}
	spare := os.NewFile(uintptr(fds[1]), "startup-monitor")
	t.Cleanup(func() { _ = p.sock.Close(); _ = spare.Close() })

	return p, spare
}

// A spare's assignment carries copies of the daemon's handles (Spec.Held), each under
// its source, and the echo completes the hand-over.
func TestHandOverCarriesHandles(t *testing.T) {
	dir := t.TempDir()
	held := map[string]*os.File{}
	for _, name := range []string{"meminfo", "slabinfo"} {
		path := filepath.Join(dir, name)
		err := os.WriteFile(path, []byte(name), 0o644)
		if err != nil {
			t.Fatal(err)
		}

		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}

		defer func() { _ = f.Close() }()

		held[path] = f
	}

	p, spare := startupPair(t)
	type got struct {
		a    assign
		held map[string]int
		err  error
	}

	gotc := make(chan got, 1)
	go func() {
		a, h, line, err := receiveAssign(spare)
		if err == nil {
			_, err = spare.Write(line)
		}

		gotc <- got{a, h, err}
	}()

	err := p.handOver("/run/x", held)
	if err != nil {
		t.Fatal(err)
	}

	g := <-gotc
	if g.err != nil || g.a.RunDir != "/run/x" || len(g.held) != len(held) {
		t.Fatalf("received %+v, %d handles, %v; want /run/x and %d handles", g.a, len(g.held), g.err, len(held))
	}

	for src, fd := range g.held {
		b := make([]byte, 16)
		n, err := unix.Pread(fd, b, 0)
		if err != nil || string(b[:n]) != filepath.Base(src) {
			t.Errorf("the handle for %s reads %q, %v", src, b[:n], err)
		}

		_ = unix.Close(fd)
	}
}

// An assignment whose handles do not match its sources is refused, and every handle
// that came with it is closed.
func TestAssignHandlesMismatchRefused(t *testing.T) {
	p, spare := startupPair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = r.Close() }()

	// Two fds for one source.
	err = setup.SendLine(p.sock, []byte(`{"run_dir":"/run/x","held":["/a"]}`+"\n"), int(w.Fd()), int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}

	_ = w.Close()
	_, held, _, err := receiveAssign(spare)
	if err == nil || held != nil {
		t.Fatalf("a mismatched assignment was taken: %v, %v", held, err)
	}

	// Every copy of the write end is closed: the read end sees EOF at once.
	_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := r.Read(make([]byte, 1))
	if n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("a handle of the refused assignment stayed open (read: %d, %v)", n, err)
	}
}
