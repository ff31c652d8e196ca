package fileio

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Serve is the file server's main loop (proto.go): it takes connections from the control
// socket ctrl and serves each on a goroutine of its own, until the daemon closes ctrl.
//
// The caller (lxd/nsexec's file server) has joined the container's user and mount
// namespaces and become its root: "/" is the container's root, every open is checked by the
// kernel as the container's root, and ids are the container's. proc is an fd of the host's
// procfs (the container's does not show this process), used only to reopen our own fds.
func Serve(ctrl int, proc int) error {
	root, err := openMountedRoot(proc)
	if err != nil {
		return err
	}

	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(ctrl, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil || (n == 0 && oobn == 0) {
			return nil // the daemon closed the socket
		}

		fds := Rights(oob[:oobn])
		if len(fds) != 1 {
			closeFds(fds)
			continue
		}

		go root.serveConn(os.NewFile(uintptr(fds[0]), "file-conn"))
	}
}

// serveConn runs one operation.
func (r *Root) serveConn(conn *os.File) {
	defer conn.Close()

	var req request
	err := readFrame(conn, maxRequest, &req)
	if err != nil {
		return
	}

	switch req.Op {
	case opOpen:
		e, err := r.Open(req.Path)
		if err != nil {
			_ = writeFrame(conn, replyOf(err), maxReply)
			return
		}

		err = writeFrame(conn, reply{Entry: e}, maxReply)
		if err != nil {
			// Most likely a listing too long for one message: say so.
			_ = writeFrame(conn, replyOf(err), maxReply)
		}

		if e.File != nil {
			if err == nil {
				// The content of a sparse file is streamed as it is read, never held.
				_, _ = copyContent(conn, e.File)
			}

			_ = e.File.Close()
		}

	case opWrite:
		created, err := r.WriteFile(req.Path, conn, req.Append, req.Mode, req.Owner)
		rep := replyOf(err)
		rep.Created = created
		_ = writeFrame(conn, rep, maxReply)

	case opMkdir:
		_ = writeFrame(conn, replyOf(r.Mkdir(req.Path, req.Mode, req.Owner)), maxReply)

	case opSymlink:
		_ = writeFrame(conn, replyOf(r.Symlink(req.Target, req.Path, req.Owner)), maxReply)

	case opRemove:
		_ = writeFrame(conn, replyOf(r.Remove(req.Path)), maxReply)

	default:
		_ = writeFrame(conn, reply{Status: 400, Error: "unknown file operation " + req.Op}, maxReply)
	}
}

// Rights returns the fds passed in a control message (SCM_RIGHTS); the exec and file
// servers both read the fds of their requests with it.
func Rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}

	var fds []int
	for i := range msgs {
		f, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, f...)
		}
	}

	return fds
}

func closeFds(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
