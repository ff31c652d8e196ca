package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// Framing of the exec and console streams, shared with LXD: payload bytes are
// binary messages, an empty text message (a "barrier") ends a stream, and
// JSON text messages on the "control" socket steer the session.

// streamBufferSize is the largest binary message we send; LXD's server reads
// at most this much per message.
const streamBufferSize = 128 * 1024

// outputGrace bounds how long Wait keeps waiting for output streams after the
// operation has ended: the server flushes them before finishing the
// operation, so anything longer means a stuck stream, not pending data.
const outputGrace = 5 * time.Second

// ExecArgs are the local ends of an exec's streams.
type ExecArgs struct {
	// Stdin is copied to the command until EOF, which is then signalled to
	// the server (a barrier). nil means an empty stdin. In interactive mode it
	// carries raw terminal bytes. Note that a Stdin blocked in Read (a
	// terminal, a pipe) keeps its copying goroutine alive until Read returns.
	Stdin io.Reader
	// Stdout receives the command's output (in interactive mode the merged
	// terminal output). nil discards it.
	Stdout io.Writer
	// Stderr receives standard error in non-interactive mode. nil discards it.
	Stderr io.Writer
}

// ExecSession is a running exec: its operation and websockets. Resize and
// Signal may be called from any goroutine while Wait runs.
type ExecSession struct {
	stream
}

// ExecInstance starts req.Command in a running instance. With
// req.WaitForWS (what a caller wanting streams sets) it connects the
// websockets (control, then 0, and 1 and 2 in non-interactive mode, at
// once) and starts copying args; without it the command runs detached and
// only Wait is meaningful. ctx bounds the setup only.
func (c *Client) ExecInstance(ctx context.Context, name string, req api.InstanceExecPost, args ExecArgs) (*ExecSession, error) {
	// The command's end ends the operation: wait for it from the start,
	// without an event listener.
	op, err := c.queryOperationBackground(ctx, http.MethodPost, instancePath(name)+"/exec", req)
	if err != nil {
		return nil, err
	}

	s := &ExecSession{stream: stream{op: op, outDone: make(chan struct{})}}
	if !req.WaitForWS {
		close(s.outDone)
		return s, nil
	}

	fds, err := opSecrets(op)
	if err != nil {
		s.Close()
		return nil, err
	}

	want := []string{"control", "0"}
	if !req.Interactive {
		want = append(want, "1", "2")
	}

	conns, err := s.connect(ctx, c, fds, want)
	if err != nil {
		s.Close()
		return nil, err
	}

	stdin := args.Stdin
	if stdin == nil {
		stdin = eofReader{}
	}

	if req.Interactive {
		go sendStream(conns["0"], stdin)
		s.follow(receiveStream(conns["0"], orDiscard(args.Stdout)))

		return s, nil
	}

	go sendStream(conns["0"], stdin)
	go drain(conns["0"])
	s.follow(
		receiveStream(conns["1"], orDiscard(args.Stdout)),
		receiveStream(conns["2"], orDiscard(args.Stderr)),
	)

	return s, nil
}

// Signal forwards a signal number to the command.
func (s *ExecSession) Signal(sig int) error {
	return s.sendControl(api.InstanceExecControl{Command: api.ExecControlSignal, Signal: sig})
}

// Wait waits for the command to end and its output to be delivered, and
// returns its exit code (128+N when killed by signal N). err is the
// operation's error, if it failed (e.g. "Command not found", with code 127);
// code is -1 when the server reported none. Wait closes the session.
func (s *ExecSession) Wait(ctx context.Context) (code int, err error) {
	opErr := s.waitOp(ctx)
	if errors.Is(opErr, context.Canceled) || errors.Is(opErr, context.DeadlineExceeded) {
		return -1, opErr
	}

	code = -1
	v, ok := s.op.Metadata["return"].(float64)
	if ok {
		code = int(v)
	}

	return code, opErr
}

// stream is what exec and console sessions share: the operation, the control
// socket and the end of the output streams.
type stream struct {
	op *Operation

	conns []*websocket.Conn

	// ctlMu serialises writes on control, which gorilla allows one at a time.
	ctlMu   sync.Mutex
	control *websocket.Conn

	outDone   chan struct{} // closed once every output stream has ended
	closeOnce sync.Once
}

// Operation returns the session's operation, e.g. for its ID or metadata.
func (s *stream) Operation() *Operation { return s.op }

// OutputDone is closed once every output stream has ended (the command
// exited or the server closed the session).
func (s *stream) OutputDone() <-chan struct{} { return s.outDone }

// Resize sends the terminal size (interactive exec and console).
func (s *stream) Resize(width, height int) error {
	return s.sendControl(api.InstanceExecControl{
		Command: api.ExecControlWindowResize,
		Args:    map[string]string{"width": strconv.Itoa(width), "height": strconv.Itoa(height)},
	})
}

// Close ends the session from the client side: a close frame on the control
// socket tells the server the client went away (it kills an exec'd command),
// then every connection and the event listener are closed. Safe to call more
// than once.
func (s *stream) Close() {
	s.closeOnce.Do(func() {
		if s.control != nil {
			s.ctlMu.Lock()
			_ = s.control.WriteControl(closeMessage, formatClose(""), deadline())
			s.ctlMu.Unlock()
		}

		for _, c := range s.conns {
			_ = c.Close()
		}

		s.op.Close()
	})
}

// waitOp waits for the operation, then for the output streams (bounded by
// outputGrace), then closes the session.
func (s *stream) waitOp(ctx context.Context) error {
	err := s.op.Wait(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}

	t := time.NewTimer(outputGrace)
	defer t.Stop()

	select {
	case <-s.outDone:
	case <-t.C:
	case <-ctx.Done():
	}

	s.Close()

	return err
}

func (s *stream) sendControl(msg api.InstanceExecControl) error {
	if s.control == nil {
		return errors.New("sending control message: no control connection")
	}

	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding control message: %w", err)
	}

	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()

	_ = s.control.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = s.control.WriteMessage(websocket.TextMessage, data)
	if err != nil {
		return fmt.Errorf("sending %s control message: %w", msg.Command, err)
	}

	return nil
}

// connect dials the websockets named: control first, as lxc does (the
// server may start the command as soon as the streams are there, and a
// control socket connected later would miss it), then the streams all at
// once. It keeps the control connection's incoming frames flowing (close
// and ping handling need a reader).
func (s *stream) connect(ctx context.Context, c *Client, fds map[string]string, names []string) (map[string]*websocket.Conn, error) {
	conns := map[string]*websocket.Conn{}

	dial := func(fd string) (*websocket.Conn, error) {
		secret, ok := fds[fd]
		if !ok {
			return nil, fmt.Errorf("operation %s offers no %q websocket", s.op.ID, fd)
		}

		conn, err := c.dialOperationWebsocket(ctx, s.op.ID, secret)
		if err != nil {
			return nil, fmt.Errorf("connecting the %q websocket: %w", fd, err)
		}

		return conn, nil
	}

	streams := []string{}

	for _, fd := range names {
		if fd != "control" {
			streams = append(streams, fd)
			continue
		}

		conn, err := dial(fd)
		if err != nil {
			return nil, err
		}

		conns[fd] = conn
		s.conns = append(s.conns, conn)
	}

	type dialed struct {
		fd   string
		conn *websocket.Conn
		err  error
	}

	results := make(chan dialed, len(streams))

	for _, fd := range streams {
		go func() {
			conn, err := dial(fd)
			results <- dialed{fd: fd, conn: conn, err: err}
		}()
	}

	var firstErr error

	for range streams {
		r := <-results
		if r.err != nil {
			firstErr = cmp.Or(firstErr, r.err)
			continue
		}

		conns[r.fd] = r.conn
		s.conns = append(s.conns, r.conn)
	}

	if firstErr != nil {
		return nil, firstErr
	}

	s.control = conns["control"]
	if s.control != nil {
		go drain(s.control)
	}

	return conns, nil
}

// follow closes outDone once every done channel has closed.
func (s *stream) follow(done ...<-chan struct{}) {
	go func() {
		for _, d := range done {
			<-d
		}

		close(s.outDone)
	}()
}

// dialOperationWebsocket connects one stream of a websocket-class operation.
func (c *Client) dialOperationWebsocket(ctx context.Context, opID, secret string) (*websocket.Conn, error) {
	u := "ws://unix.socket/1.0/operations/" + url.PathEscape(opID) + "/websocket?secret=" + url.QueryEscape(secret)
	conn, resp, err := c.ws.DialContext(ctx, u, http.Header{"User-Agent": {c.userAgent}})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}

	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			return nil, fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}

		return nil, err
	}

	return conn, nil
}

// opSecrets returns the fds → secret map of a websocket operation.
func opSecrets(op *Operation) (map[string]string, error) {
	raw, ok := op.Metadata["fds"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("operation %s has no websocket secrets", op.ID)
	}

	fds := map[string]string{}
	for k, v := range raw {
		s, ok := v.(string)
		if ok {
			fds[k] = s
		}
	}

	return fds, nil
}

// sendStream copies r to conn as binary messages, then sends a barrier. It
// is the only data writer on conn.
func sendStream(conn *websocket.Conn, r io.Reader) {
	buf := make([]byte, streamBufferSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			werr := conn.WriteMessage(websocket.BinaryMessage, buf[:n])
			if werr != nil {
				return
			}
		}

		if err != nil {
			break
		}
	}

	_ = conn.WriteMessage(websocket.TextMessage, nil)
}

// receiveStream copies conn's binary messages to w until a barrier, a close
// or an error; the returned channel closes then. After a barrier it keeps
// reading (and discarding) so that close frames and pings are answered until
// the server closes the connection.
func receiveStream(conn *websocket.Conn, w io.Writer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer func() {
			select {
			case <-done:
			default:
				close(done)
			}
		}()

		wErr := false
		for {
			mt, r, err := conn.NextReader()
			if err != nil {
				return
			}

			if wErr {
				continue
			}

			n, err := io.Copy(w, r)
			if err != nil {
				// A broken local writer must not stall the server: keep
				// consuming the stream, writing nothing.
				wErr = true
				continue
			}

			if mt == websocket.TextMessage && n == 0 {
				close(done)
				drain(conn)

				return
			}
		}
	}()

	return done
}

// drain reads and discards messages until the connection fails or closes.
func drain(conn *websocket.Conn) {
	for {
		_, _, err := conn.NextReader()
		if err != nil {
			return
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}

	return w
}

const closeMessage = websocket.CloseMessage

// formatClose is a normal-closure close frame payload with reason.
func formatClose(reason string) []byte {
	return websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
}

// deadline bounds control frames so that a dead server cannot block us.
func deadline() time.Time { return time.Now().Add(time.Second) }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
