package setup

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRecvFDLeavesTheNextLine: init sends proc-context (with its fd) and then, without
// waiting, its next line (execing, or an error); the monitor's one recvmsg must take the
// first message only, leaving the second for its JSON decoder.
func TestRecvFDLeavesTheNextLine(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}

	monitor, init := os.NewFile(uintptr(fds[0]), "monitor"), os.NewFile(uintptr(fds[1]), "init")
	defer func() { _ = monitor.Close(); _ = init.Close() }()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = r.Close(); _ = w.Close() }()

	err = SendFD(init, SyncMsg{Type: SyncProcContext}, int(r.Fd()))
	if err == nil {
		err = json.NewEncoder(init).Encode(SyncMsg{Type: SyncExecing})
	}

	if err != nil {
		t.Fatal(err)
	}

	fd, err := RecvFD(monitor, SyncProcContext)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = unix.Close(fd) }()

	// The fd is the pipe's read end: what goes into w comes out of it.
	_, _ = w.Write([]byte("x"))
	b := make([]byte, 1)
	if n, err := unix.Read(fd, b); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("the passed fd reads %q, %v", b[:n], err)
	}

	var next SyncMsg
	err = json.NewDecoder(monitor).Decode(&next)
	if err != nil || next.Type != SyncExecing {
		t.Fatalf("the line after the fd message: %+v, %v; want %s", next, err, SyncExecing)
	}
}

// TestRecvFDSkipsALoneNewline: the config's closing newline, which init's json.Decoder
// may leave unread, comes alone before mount-ns; RecvFD reads past it, on a blocking
// socket as init's is, and on the monitor's non-blocking one.
func TestRecvFDSkipsALoneNewline(t *testing.T) {
	for _, blocking := range []bool{true, false} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}

		_ = unix.SetNonblock(fds[0], !blocking)
		recv, send := os.NewFile(uintptr(fds[0]), "recv"), os.NewFile(uintptr(fds[1]), "send")

		_, err = send.Write([]byte("\n"))
		if err != nil {
			t.Fatal(err)
		}

		sent := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // the newline is read alone first
			sent <- SendFD(send, SyncMsg{Type: SyncMountNS}, int(send.Fd()))
		}()

		fd, err := RecvFD(recv, SyncMountNS)
		if err != nil {
			t.Fatalf("blocking=%v: %v", blocking, err)
		}

		if err := <-sent; err != nil {
			t.Fatal(err)
		}

		_ = unix.Close(fd)
		_ = recv.Close()
		_ = send.Close()
	}
}
