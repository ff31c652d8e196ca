package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// DetachReason is the close reason the client sends on the control socket when
// the user detaches from a console, as lxc does.
const DetachReason = ws.DetachReason

// ConsoleArgs are the local ends of a console session.
type ConsoleArgs struct {
	// Terminal is copied to the console (raw terminal bytes). nil sends nothing.
	Terminal io.Reader
	// Output receives the console's output. nil discards it.
	Output io.Writer
}

// ConsoleSession is an attached console. Resize may be called while Wait runs;
// Detach ends the session.
type ConsoleSession struct {
	stream
}

// ConsoleInstance attaches to the console of a running instance. An empty
// req.Type means "console". ctx bounds the setup only.
func (c *Client) ConsoleInstance(ctx context.Context, name string, req api.InstanceConsolePost, args ConsoleArgs) (*ConsoleSession, error) {
	if req.Type == "" {
		req.Type = api.ConsoleTypeConsole
	}

	op, err := c.queryOperation(ctx, http.MethodPost, instancePath(name)+"/console", req, "")
	if err != nil {
		return nil, err
	}

	s := &ConsoleSession{stream: stream{op: op, outDone: make(chan struct{})}}

	// lxc refuses a console without a control socket: detaching needs it.
	// ConnectStreams refuses a layout stream the operation does not offer.
	conns, err := s.connect(ctx, c, ws.ConsoleLayout())
	if err != nil {
		s.Close()
		return nil, err
	}

	if args.Terminal != nil {
		ws.Send(conns[ws.FDStdin], args.Terminal)
	}

	s.follow(receiveStream(conns[ws.FDStdin], args.Output))

	return s, nil
}

// Detach leaves the console: a close frame with DetachReason on the control
// socket, after which the server ends the session and the operation succeeds.
// Wait still has to be called to collect the result.
func (s *ConsoleSession) Detach() {
	if s.control == nil {
		return
	}

	s.control.SendClose(DetachReason)
}

// Wait waits until the server has ended the session (after Detach, or when
// the instance stops) and returns the operation's error, if any. It closes
// the session.
func (s *ConsoleSession) Wait(ctx context.Context) error {
	return s.waitOp(ctx)
}

// GetInstanceConsoleLog returns the instance's console log (the ring buffer
// of a running instance, the saved log of a stopped one). The caller closes it.
func (c *Client) GetInstanceConsoleLog(ctx context.Context, name string) (io.ReadCloser, error) {
	path := instancePath(name) + "/console"
	resp, err := c.rawRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}

	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()

		_, _, err := parseResponse(resp, path)
		if err == nil {
			err = fmt.Errorf("getting the console log of %s: %s", name, resp.Status)
		}

		return nil, err
	}

	return resp.Body, nil
}

// DeleteInstanceConsoleLog clears the instance's console log.
func (c *Client) DeleteInstanceConsoleLog(ctx context.Context, name string) error {
	_, _, err := c.query(ctx, http.MethodDelete, instancePath(name)+"/console", nil, "")
	return err
}
