package fileio

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

// The file server protocol. The daemon and a container's file server share a
// SOCK_SEQPACKET control socket; for each operation the daemon makes a SOCK_STREAM
// socketpair and sends one end over the control socket (SCM_RIGHTS, with the one-byte
// message "c"). Everything about the operation then travels on that connection:
//
//	daemon → server   request frame
//	daemon → server   (write) the file's content, then shutdown(SHUT_WR)
//	server → daemon   reply frame
//	server → daemon   (open of a regular file, no error) the file's content, then close
//
// A frame is a 4-byte big-endian length and that much JSON. The server answers a write's
// request only once it has consumed the content (or failed before reading it, in which
// case the daemon's writes fail with EPIPE and it reads the reply).

// Operations.
const (
	opOpen    = "open"
	opWrite   = "write"
	opMkdir   = "mkdir"
	opSymlink = "symlink"
	opRemove  = "remove"
)

// request is one operation. Ids are the container's.
type request struct {
	Op     string `json:"op"`
	Path   string `json:"path"`
	Target string `json:"target,omitempty"` // symlink
	Append bool   `json:"append,omitempty"` // write
	Mode   uint32 `json:"mode,omitempty"`   // write, mkdir
	Owner  Owner  `json:"owner"`            // write, mkdir, symlink
}

// reply is the outcome of one operation.
type reply struct {
	Status  int    `json:"status,omitempty"` // HTTP status of Error, 0 for none
	Error   string `json:"error,omitempty"`
	Entry   *Entry `json:"entry,omitempty"` // open
	Created bool   `json:"created,omitempty"`
}

const (
	maxRequest = 64 << 10 // two paths of at most 4096 bytes and a few fields
	maxReply   = 64 << 20 // a listing too long for it is refused (413) by the server
)

func writeFrame(w io.Writer, v any, max int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}

	if len(b) > max {
		return api.StatusErrorf(http.StatusRequestEntityTooLarge, "message of %d bytes, more than %d", len(b), max)
	}

	frame := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(frame, uint32(len(b))) //nolint:gosec // bounded by the callers
	_, err = w.Write(append(frame, b...))
	return err
}

func readFrame(r io.Reader, max int, v any) error {
	var hdr [4]byte
	_, err := io.ReadFull(r, hdr[:])
	if err != nil {
		return err
	}

	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return fmt.Errorf("message of %d bytes, more than %d", n, max)
	}

	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	if err != nil {
		return err
	}

	return json.Unmarshal(b, v)
}

// replyOf turns an operation's error into its reply, keeping its HTTP status.
func replyOf(err error) reply {
	if err == nil {
		return reply{}
	}

	status := api.StatusCodeOf(err)
	if status == 0 {
		status = http.StatusInternalServerError
	}

	return reply{Status: status, Error: err.Error()}
}

// err is the error a reply carries, with its HTTP status.
func (r reply) err() error {
	if r.Error == "" && r.Status == 0 {
		return nil
	}

	if r.Status == 0 || r.Status == http.StatusInternalServerError {
		return errors.New(r.Error)
	}

	return api.StatusErrorf(r.Status, "%s", r.Error)
}

// copyBufSize is the chunk content travels in between the daemon and a file server: 32 KiB
// (io.Copy's) costs a system call pair per chunk on both sides of a socket.
const copyBufSize = 256 << 10

// copyContent copies src to dst in copyBufSize chunks.
func copyContent(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	// Hide ReaderFrom and WriterTo: *os.File's fall back to 32 KiB copies between a file
	// and a socket.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}
