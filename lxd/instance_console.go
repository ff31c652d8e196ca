package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// POST /1.0/instances/{name}/console: attach to /dev/console. The console
// is taken at once, so a second attach fails with 409 here, not later.
func instanceConsolePost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstanceConsolePost{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Type != "" && req.Type != api.ConsoleTypeConsole {
		return response.BadRequest(fmt.Errorf("unsupported console type %q", req.Type))
	}

	_, err = d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	mon, err := d.instances.Console(name)
	if err != nil {
		return response.SmartError(err)
	}

	conn, err := mon.ConsoleAttach()
	if errors.Is(err, container.ErrConsoleBusy) {
		return response.SmartError(api.StatusErrorf(http.StatusConflict, "This console is already connected. Force is required to take it over."))
	}

	if err != nil {
		return response.SmartError(api.StatusErrorf(http.StatusBadRequest, "Instance is not running"))
	}

	if req.Width > 0 && req.Height > 0 {
		_ = mon.ConsoleResize(req.Width, req.Height)
	}

	c := &consoleSession{mon: mon, conn: conn, ws: newWSSession([]string{"0", "control"}, []string{"0", "control"})}

	op, err := d.ops.Create(api.OperationClassWebsocket, "Showing console", instanceResources(name),
		map[string]any{"fds": c.ws.fds()}, c.run, c.ws.connect, nil)
	if err != nil {
		_ = conn.Close()
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}

// consoleSession is one console attach.
type consoleSession struct {
	mon  *container.Monitor
	conn net.Conn // the monitor's console stream
	ws   *wsSession
}

func (c *consoleSession) run(ctx context.Context, _ *operations.Operation) error {
	defer func() { _ = c.conn.Close() }() // releases the console
	defer c.ws.close("")

	err := c.ws.wait(ctx)
	if err != nil {
		return err
	}

	data, control := c.ws.conn("0"), c.ws.conn("control")

	// Console → client until the monitor closes (the container stopped)
	// or the client detaches; then LXD's "\n\r" and a barrier.
	outDone := ws.MirrorRead(data, io.MultiReader(eofOnError{c.conn}, strings.NewReader("\n\r")))

	// Client → console until its barrier or close.
	inDone := ws.MirrorWrite(data, c.conn)

	detached := make(chan struct{})

	go func() {
		defer close(detached)
		c.serveControl(control)
	}()

	select {
	case <-detached:
		_ = c.conn.SetReadDeadline(time.Now()) // ends the output copy
	case <-outDone:
	case <-inDone:
	}

	_ = c.conn.Close()
	c.ws.close("")
	<-outDone
	<-inDone
	<-detached

	return nil
}

// eofOnError ends a stream at its first error, so what follows in a
// MultiReader is still sent.
type eofOnError struct{ r io.Reader }

func (e eofOnError) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		err = io.EOF
	}

	return n, err
}

// serveControl applies window-resize messages until the control socket
// closes, which is how the client detaches.
func (c *consoleSession) serveControl(conn *ws.Conn) {
	conn.SetReadLimit(ws.MaxControlMessage)

	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}

		msg, err := ws.ParseControl(data)
		if err == nil && msg.Command == api.ExecControlWindowResize {
			_ = c.mon.ConsoleResize(msg.Width, msg.Height)
		}
	}
}

// GET /1.0/instances/{name}/console: the console log, raw. A running
// instance's comes from the monitor's ring; a stopped one's from the file
// its monitor left.
func instanceConsoleGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")

	_, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	var log []byte

	mon, err := d.instances.Console(name)
	if err == nil {
		log, err = mon.ConsoleLog()
	}

	if err != nil {
		log, err = os.ReadFile(d.instances.ConsoleLogPath(name))
		if err != nil && !os.IsNotExist(err) {
			return response.SmartError(err)
		}
	}

	return response.RawResponse("console.log", int64(len(log)), time.Time{}, nil, bytes.NewReader(log))
}

// DELETE /1.0/instances/{name}/console: clear the console log.
func instanceConsoleDelete(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")

	_, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	mon, err := d.instances.Console(name)
	if err == nil {
		err = mon.ClearConsoleLog()
		if err == nil {
			return response.EmptySyncResponse
		}
	}

	err = os.Truncate(d.instances.ConsoleLogPath(name), 0)
	if err != nil && !os.IsNotExist(err) {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
