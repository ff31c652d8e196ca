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

	err = d.instances.Exists(r.Context(), name)
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

	c := &consoleSession{mon: mon, conn: conn, ws: ws.NewSession(ws.ConsoleLayout())}
	connect := func(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error { return c.ws.Connect(r, w) }

	op, err := d.ops.Create(api.OperationClassWebsocket, "Showing console", instanceResources(name),
		map[string]any{ws.MetaFDs: c.ws.Secrets()}, c.run, connect, nil)
	if err != nil {
		_ = conn.Close()
		return response.InternalError(err)
	}

	ownOperation(d, r, op)
	return response.OperationResponse(op)
}

// consoleSession is one console attach.
type consoleSession struct {
	mon  consoleMonitor
	conn net.Conn // the monitor's console stream
	ws   *ws.Session
}

func (c *consoleSession) run(ctx context.Context, _ *operations.Operation) error {
	defer releaseConsole(c.conn)
	defer c.ws.Close("")

	err := c.ws.Wait(ctx)
	if err != nil {
		return err
	}

	data, control := c.ws.Conn(ws.FDStdin), c.ws.Conn(ws.FDControl)

	// An aborted operation (its client's certificate was removed) detaches.
	stop := context.AfterFunc(ctx, func() { c.ws.Close("") })
	defer stop()

	// Console → client until the monitor closes (the container stopped)
	// or the client detaches; then LXD's goodbye and a barrier.
	outDone := ws.Send(data, io.MultiReader(eofOnError{c.conn}, strings.NewReader(ws.ConsoleGoodbye)))

	// Client → console until its barrier or close.
	inDone := ws.Receive(data, c.conn)

	detached := make(chan struct{})

	// Resizes until the control socket closes, which is how the client
	// detaches.
	go func() {
		defer close(detached)

		_ = ws.ServeControl(control, ws.Controls{Resize: func(w, h int) { _ = c.mon.ConsoleResize(w, h) }})
	}()

	select {
	case <-detached:
	case <-outDone:
	case <-inDone:
	}

	// The output copy ends and says LXD's goodbye (a second at most: a client that
	// stopped reading does not hold the console), then the websockets close.
	_ = c.conn.SetReadDeadline(time.Now())
	select {
	case <-outDone:
	case <-time.After(time.Second):
	}

	c.ws.Close("")
	<-outDone
	<-inDone
	<-detached
	releaseConsole(c.conn) // nothing else reads or writes it now

	return nil
}

// releaseConsole ends an attach and waits, at most a second, until the monitor has let
// the console go (it closes its end once it has): the operation then ends with the
// console free, and an attach right after it is not refused as busy.
func releaseConsole(conn net.Conn) {
	if hc, ok := conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, conn)
	}

	_ = conn.Close()
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

// GET /1.0/instances/{name}/console: the console log, raw. A running
// instance's comes from the monitor's ring; a stopped one's from the file
// its monitor left.
func instanceConsoleGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")

	err := d.instances.Exists(r.Context(), name)
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

	err := d.instances.Exists(r.Context(), name)
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
