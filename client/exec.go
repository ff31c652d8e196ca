package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

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

	conns, err := s.connect(ctx, c, ws.ExecLayout(req.Interactive))
	if err != nil {
		s.Close()
		return nil, err
	}

	stdin := args.Stdin
	if stdin == nil {
		stdin = eofReader{}
	}

	ws.Send(conns[ws.FDStdin], stdin)

	if req.Interactive {
		s.follow(receiveStream(conns[ws.FDStdin], args.Stdout))

		return s, nil
	}

	go func() { _ = ws.Drain(conns[ws.FDStdin]) }()
	s.follow(
		receiveStream(conns[ws.FDStdout], args.Stdout),
		receiveStream(conns[ws.FDStderr], args.Stderr),
	)

	return s, nil
}

// Signal forwards a signal number to the command.
func (s *ExecSession) Signal(sig int) error {
	return s.sendControl(ws.SignalMessage(sig))
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

	code, ok := ws.ExitCodeOf(s.op.Metadata)
	if !ok {
		code = -1
	}

	return code, opErr
}

// stream is what exec and console sessions share: the operation, the control
// socket and the end of the output streams.
type stream struct {
	op *Operation

	conns   []*ws.Conn
	control *ws.ControlConn // nil until connected

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
	return s.sendControl(ws.ResizeMessage(width, height))
}

// Close ends the session from the client side: a close frame on the control
// socket tells the server the client went away (it kills an exec'd command),
// then every connection and the event listener are closed. Safe to call more
// than once.
func (s *stream) Close() {
	s.closeOnce.Do(func() {
		if s.control != nil {
			s.control.SendClose("")
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

	return s.control.Send(msg)
}

// connect dials the streams of l in the protocol's order and keeps the
// control connection's incoming frames flowing (close and ping handling need
// a reader).
func (s *stream) connect(ctx context.Context, c *Client, l ws.Layout) (map[string]*ws.Conn, error) {
	secrets, ok := ws.SecretsOf(s.op.Metadata)
	if !ok {
		return nil, fmt.Errorf("operation %s has no websocket secrets", s.op.ID)
	}

	dial := func(ctx context.Context, secret string) (*ws.Conn, error) {
		return c.dialOperationWebsocket(ctx, s.op.ID, secret)
	}

	conns, err := ws.ConnectStreams(ctx, secrets, l.Streams, dial)
	if err != nil {
		return nil, fmt.Errorf("operation %s: %w", s.op.ID, err)
	}

	for _, conn := range conns {
		s.conns = append(s.conns, conn)
	}

	if conns[ws.FDControl] != nil {
		s.control = ws.NewControlConn(conns[ws.FDControl])
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
func (c *Client) dialOperationWebsocket(ctx context.Context, opID, secret string) (*ws.Conn, error) {
	u := c.wsURL + "/1.0/operations/" + url.PathEscape(opID) + "/websocket?secret=" + url.QueryEscape(secret)
	return c.ws.Dial(ctx, u, http.Header{"User-Agent": {c.userAgent}})
}

// receiveStream copies conn's data to w (nil discards) until a barrier, a
// close or an error; the returned channel closes then. A broken local writer
// must not stall the server: the stream is still consumed. After the barrier
// it keeps reading, so that pings and close frames are answered until the
// server closes the connection.
func receiveStream(conn *ws.Conn, w io.Writer) <-chan struct{} {
	if w == nil {
		w = io.Discard
	}

	done := ws.Receive(conn, &forgivingWriter{w: w})

	go func() {
		<-done
		_ = ws.Drain(conn)
	}()

	return done
}

// forgivingWriter discards everything after its writer's first error.
type forgivingWriter struct {
	w      io.Writer
	failed bool
}

func (f *forgivingWriter) Write(p []byte) (int, error) {
	if !f.failed {
		_, err := f.w.Write(p)
		f.failed = err != nil
	}

	return len(p), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
