package setup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Two sync messages carry an fd (SCM_RIGHTS): proc-context (init's procfs
// fs_context) and mount-ns (the container's mount namespace). Each is one JSON
// line sent with one sendmsg and read with one recvmsg, never through a
// json.Decoder (which reads ahead and would drop the fd). mount-ns is the only
// message of the monitor's after the config; proc-context is the first line init
// sends, and a recvmsg stops at the end of a message that carries fds, so the line
// init sends after it (execing, or an error) stays for the decoder.

// maxFDMsg bounds a message that carries an fd.
const maxFDMsg = 4096

// SendFD sends msg with fd attached on sock.
func SendFD(sock *os.File, msg SyncMsg, fd int) error {
	b, err := json.Marshal(msg)
	if err == nil {
		err = SendLine(sock, append(b, '\n'), fd)
	}

	if err != nil {
		return fmt.Errorf("sending %s: %w", msg.Type, err)
	}

	return nil
}

// SendLine sends line on sock in one message with fds attached (SCM_RIGHTS), all of it
// or an error: such a message is small, and a short send would leave the rest to a
// second write.
func SendLine(sock *os.File, line []byte, fds ...int) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}

	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}

	var serr error
	err = rc.Write(func(s uintptr) bool {
		var n int
		n, serr = unix.SendmsgN(int(s), line, oob, nil, 0)
		if serr == nil && n < len(line) {
			serr = fmt.Errorf("sent %d of the message's %d bytes", n, len(line))
		}

		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}

	return serr
}

// RecvFD reads one message of type want from sock and the fd that came
// with it (close-on-exec). An error message from the peer is returned as
// an error.
func RecvFD(sock *os.File, want SyncType) (int, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return -1, err
	}

	buf := make([]byte, maxFDMsg)
	oob := make([]byte, unix.CmsgSpace(4))

	var n, oobn, flags int

	var rerr error

	err = rc.Read(func(s uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(s), buf, oob, unix.MSG_CMSG_CLOEXEC)
			// The newline that ends the line before (a json.Decoder stops at its value's
			// last byte and may leave it) can come alone: the message is still to come
			// (a blocking socket, as init's, waits for it here).
			if rerr != nil || n == 0 || oobn > 0 || len(bytes.TrimSpace(buf[:n])) > 0 {
				return !errors.Is(rerr, unix.EAGAIN)
			}
		}
	})
	if err == nil {
		err = rerr
	}

	if err != nil {
		return -1, fmt.Errorf("waiting for %s: %w", want, err)
	}

	// Every fd that came is ours to close; one fd is the only good outcome.
	fds, cerr := ParseRights(oob[:oobn], flags)

	var msg SyncMsg

	jerr := json.Unmarshal(bytes.TrimSpace(buf[:n]), &msg)

	switch {
	case n == 0:
		err = fmt.Errorf("peer exited before %s", want)
	case jerr != nil:
		err = fmt.Errorf("reading %s: %w", want, jerr)
	case msg.Type == SyncError:
		err = fmt.Errorf("setting up container: %s", msg.Error)
	case msg.Type != want:
		err = fmt.Errorf("got %q, want %q", msg.Type, want)
	case cerr != nil || len(fds) != 1:
		err = fmt.Errorf("%s came without its fd (%v)", want, cerr)
	}

	if err != nil {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}

		return -1, err
	}

	return fds[0], nil
}

// ParseRights returns every fd that came in the control messages oob of a recvmsg with
// flags, and an error when a message was not SCM_RIGHTS, could not be read, or was cut
// short (MSG_CTRUNC). The fds are the caller's to close, on error too.
func ParseRights(oob []byte, flags int) ([]int, error) {
	var fds []int

	cmsgs, err := unix.ParseSocketControlMessage(oob)
	for i := range cmsgs {
		got, perr := unix.ParseUnixRights(&cmsgs[i])
		fds = append(fds, got...)
		if perr != nil && err == nil {
			err = perr
		}
	}

	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = errors.New("control messages cut short")
	}

	return fds, err
}
