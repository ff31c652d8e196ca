package fileio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Tree is a container's filesystem as the files API uses it: a Root the daemon opened
// itself (a stopped container) or a Client of the container's file server (a running one).
// Ids are those of whoever does the work: host ids for a Root, the container's for a Client.
type Tree interface {
	Open(p string) (*Entry, error)
	WriteFile(p string, body io.Reader, appendMode bool, mode uint32, owner Owner) (bool, error)
	Mkdir(p string, mode uint32, owner Owner) error
	Symlink(target, p string, owner Owner) error
	Remove(p string) error
}

// ErrServerGone is an operation that could not be sent: the file server exited (its
// container stopped) or was closed. A fresh server may take it.
var ErrServerGone = errors.New("file server gone")

// opTimeout bounds each exchange with the server that is not the content itself: the
// request, and the reply once the content was sent.
const opTimeout = 30 * time.Second

// Client is the daemon's end of a container's file server (server.go). Safe for
// concurrent use; each operation has a connection of its own.
type Client struct {
	ctrl *os.File
}

// NewClient talks to the file server at the other end of ctrl (a SOCK_SEQPACKET socket,
// non-blocking). The caller closes ctrl when done with the server.
func NewClient(ctrl *os.File) *Client { return &Client{ctrl: ctrl} }

// connect makes the connection of one operation and hands the server its end.
func (c *Client) connect() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating file connection: %w", err)
	}

	rc, err := c.ctrl.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Write(func(fd uintptr) bool {
			serr = unix.Sendmsg(int(fd), []byte("c"), unix.UnixRights(fds[1]), nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
	}

	_ = unix.Close(fds[1])
	if err != nil {
		_ = unix.Close(fds[0])
		return nil, fmt.Errorf("%w: %v", ErrServerGone, err)
	}

	// Non-blocking, so that the runtime poller serves it and deadlines work.
	_ = unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), "file-conn"), nil
}

// bodyReader remembers whether a copy failed reading the body rather than writing it.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}

	return n, err
}

// do runs one operation: the request, the body if any, the reply. With keep, a successful
// reply leaves the connection open for the content that follows and returns it.
func (c *Client) do(req request, body io.Reader, keep bool) (reply, *os.File, error) {
	conn, err := c.connect()
	if err != nil {
		return reply{}, nil, err
	}

	_ = conn.SetDeadline(time.Now().Add(opTimeout))
	err = writeFrame(conn, req, maxRequest)
	if err != nil {
		_ = conn.Close()
		return reply{}, nil, fmt.Errorf("sending file request: %w", err)
	}

	if body != nil {
		// The content takes as long as its sender needs.
		_ = conn.SetDeadline(time.Time{})
		br := &bodyReader{r: body}
		_, err = copyContent(conn, br)
		if br.err != nil {
			_ = conn.Close()
			return reply{}, nil, fmt.Errorf("reading content: %w", br.err)
		}

		// A write error means the server stopped reading: its reply says why, as it does
		// for a failed half-close.
		if err == nil {
			_ = closeWrite(conn)
		}

		_ = conn.SetDeadline(time.Now().Add(opTimeout))
	}

	var rep reply
	err = readFrame(conn, maxReply, &rep)
	if err != nil {
		_ = conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return reply{}, nil, errors.New("file server ended the operation without a reply")
		}

		return reply{}, nil, fmt.Errorf("reading file server reply: %w", err)
	}

	err = rep.err()
	if err != nil || !keep {
		_ = conn.Close()
		return rep, nil, err
	}

	_ = conn.SetDeadline(time.Time{})
	return rep, conn, nil
}

func closeWrite(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}

	var serr error
	err = rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) })
	if err == nil {
		err = serr
	}

	return err
}

// Open is Root.Open in the container. A regular file's content is read from the
// connection: the caller closes Entry.File.
func (c *Client) Open(p string) (*Entry, error) {
	rep, conn, err := c.do(request{Op: opOpen, Path: p}, nil, true)
	if err != nil {
		return nil, err
	}

	if rep.Entry == nil {
		_ = conn.Close()
		return nil, errors.New("file server reply without an entry")
	}

	if rep.Entry.Type == TypeFile {
		rep.Entry.File = conn
	} else {
		_ = conn.Close()
	}

	return rep.Entry, nil
}

// WriteFile is Root.WriteFile in the container.
func (c *Client) WriteFile(p string, body io.Reader, appendMode bool, mode uint32, owner Owner) (bool, error) {
	if body == nil {
		body = eofReader{}
	}

	rep, _, err := c.do(request{Op: opWrite, Path: p, Append: appendMode, Mode: mode, Owner: owner}, body, false)
	return rep.Created, err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Mkdir is Root.Mkdir in the container.
func (c *Client) Mkdir(p string, mode uint32, owner Owner) error {
	_, _, err := c.do(request{Op: opMkdir, Path: p, Mode: mode, Owner: owner}, nil, false)
	return err
}

// Symlink is Root.Symlink in the container.
func (c *Client) Symlink(target, p string, owner Owner) error {
	_, _, err := c.do(request{Op: opSymlink, Path: p, Target: target, Owner: owner}, nil, false)
	return err
}

// Remove is Root.Remove in the container.
func (c *Client) Remove(p string) error {
	_, _, err := c.do(request{Op: opRemove, Path: p}, nil, false)
	return err
}
