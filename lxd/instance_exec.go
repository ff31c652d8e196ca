package main

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/session"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// POST /1.0/instances/{name}/exec
func instanceExecPost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstanceExecPost{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if len(req.Command) == 0 {
		return response.BadRequest(errors.New("no command given"))
	}

	env, err := d.instances.ExecEnv(r.Context(), name, req.Environment, req.User)
	if err != nil {
		return response.SmartError(err)
	}

	x := &execSession{d: d, name: name, req: req, env: env}

	metadata := map[string]any{"command": req.Command, "environment": env, "interactive": req.Interactive}

	fds := map[string]string{}

	var onConnect operations.ConnectFunc
	if req.WaitForWS {
		x.ws = ws.NewSession(ws.ExecLayout(req.Interactive))
		fds = x.ws.Secrets()
		onConnect = func(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error { return x.ws.Connect(r, w) }
	}

	metadata[ws.MetaFDs] = fds

	op, err := d.ops.Create(api.OperationClassWebsocket, "Executing command", instanceResources(name), metadata,
		x.run, onConnect, nil)
	if err != nil {
		return response.InternalError(err)
	}

	ownOperation(d, r, op)

	if !req.WaitForWS && req.RecordOutput {
		x.outputs = map[string]string{
			"1": d.instances.ExecOutputPath(name, "exec_"+op.ID()+".stdout"),
			"2": d.instances.ExecOutputPath(name, "exec_"+op.ID()+".stderr"),
		}

		_ = op.UpdateMetadata(map[string]any{"output": map[string]string{
			"1": instanceURL(r, name) + "/logs/" + filepath.Base(x.outputs["1"]),
			"2": instanceURL(r, name) + "/logs/" + filepath.Base(x.outputs["2"]),
		}})
	}

	return response.OperationResponse(op)
}

// execSession is one exec operation.
type execSession struct {
	d       *Daemon
	name    string
	req     api.InstanceExecPost
	env     map[string]string
	ws      *ws.Session       // nil without wait-for-websocket
	outputs map[string]string // record-output files by fd
}

func (x *execSession) run(ctx context.Context, op *operations.Operation) error {
	if x.ws != nil {
		defer x.ws.Close("")

		err := x.ws.Wait(ctx)
		if err != nil {
			return err
		}
	}

	code, err := x.exec(ctx)

	if code != nil {
		_ = op.UpdateMetadata(map[string]any{ws.MetaReturn: *code})
	}

	return err
}

// exec runs the command with the session's streams and returns its exit
// code (nil if it never started) once all output has been sent.
func (x *execSession) exec(ctx context.Context) (*int, error) {
	a := session.ExecArgs{
		Command: x.req.Command,
		Env:     x.env,
		UID:     x.req.User,
		GID:     x.req.Group,
		Cwd:     x.req.Cwd,
		PTY:     x.req.Interactive && x.ws != nil,
		Width:   x.req.Width,
		Height:  x.req.Height,
	}

	st, err := x.openStdio(&a)
	if err != nil {
		return nil, err
	}

	defer st.closeAll()

	p, err := x.d.instances.Exec(ctx, x.name, a)
	st.closeChildEnds()

	if err != nil {
		var ee *nsexec.ExecError
		if errors.As(err, &ee) {
			code := ee.Code
			return &code, execFailure(code, ee)
		}

		minus := -1

		return &minus, err
	}

	// An aborted operation (its client's certificate was removed) kills the command
	// and closes its streams, as losing the client's connections does.
	stop := context.AfterFunc(ctx, func() {
		_ = p.Kill()
		if x.ws != nil {
			x.ws.Close("")
		}
	})
	defer stop()

	var code int

	if a.PTY {
		code = x.runPTY(p)
	} else {
		code = x.runPipes(p, st)
	}

	return &code, execFailure(code, nil)
}

// execFailure is LXD's verdict on an exit code: 127 and 126 fail the
// operation (still with "return" set).
func execFailure(code int, cause error) error {
	switch code {
	case 127:
		return errors.New("Command not found") //nolint:staticcheck // LXD's text
	case 126:
		return errors.New("Command not executable") //nolint:staticcheck // LXD's text
	}

	return cause
}

// runPipes mirrors stdin, stdout and stderr, forwards control messages,
// and returns the exit code once the output has been flushed.
func (x *execSession) runPipes(p execProcess, st *stdio) int {
	var wg sync.WaitGroup

	exited := make(chan struct{})

	if x.ws == nil {
		code, _ := p.Wait()
		return code
	}

	// Taken now: closing the session forgets them.
	control, stdin, stdout, stderr := x.ws.Conn(ws.FDControl), x.ws.Conn(ws.FDStdin), x.ws.Conn(ws.FDStdout), x.ws.Conn(ws.FDStderr)
	kill := func() {
		select {
		case <-exited:
		default:
			_ = p.Kill()
		}
	}

	// stdin: the client's barrier (or a closed socket) closes the pipe.
	wg.Add(1)

	go func() {
		defer wg.Done()
		<-ws.Receive(stdin, st.stdinW)
		_ = st.stdinW.Close()
	}()

	outDone := []<-chan struct{}{ws.Send(stdout, st.stdoutR), ws.Send(stderr, st.stderrR)}

	// Nothing comes on 1 and 2, but someone must read them for pongs and
	// close frames; without a control socket a failure there is how a
	// vanished client shows (as LXD).
	for _, conn := range []*ws.Conn{stdout, stderr} {
		wg.Add(1)

		go func() {
			defer wg.Done()

			// Drain returns once the stream is gone: without a control socket, that is
			// the client going away.
			_ = ws.Drain(conn)
			if control == nil {
				kill()
			}
		}()
	}

	if control != nil {
		wg.Add(1)

		go func() {
			defer wg.Done()
			serveExecControl(control, p, kill)
		}()
	}

	code, _ := p.Wait()
	close(exited)

	// Output still buffered in the pipes goes out; a background child
	// holding them open is cut off after a grace period.
	waitAll(outDone, ws.OutputGrace, func() {
		_ = st.stdoutR.Close()
		_ = st.stderrR.Close()
	})

	// Unblocks a stdin copy stuck on a full pipe nobody reads any more.
	_ = st.stdinW.Close()

	// Closing the sockets ends the readers above.
	x.ws.Close("")
	wg.Wait()

	return code
}

// runPTY mirrors the terminal on socket 0 and returns the exit code.
func (x *execSession) runPTY(p execProcess) int {
	defer p.ClosePTY()

	exited := make(chan struct{})
	kill := func() {
		select {
		case <-exited:
		default:
			_ = p.Kill()
		}
	}

	var wg sync.WaitGroup

	master := p.PTY()
	conn, control := x.ws.Conn(ws.FDStdin), x.ws.Conn(ws.FDControl)

	// Client → terminal until its barrier; LXD then stops writing. The
	// master stays open until the command has exited.
	wg.Add(1)

	go func() {
		defer wg.Done()
		<-ws.Receive(conn, master)
	}()

	outDone := ws.Send(conn, master)

	wg.Add(1)

	go func() {
		defer wg.Done()
		serveExecControl(control, p, kill)
	}()

	code, _ := p.Wait()
	close(exited)

	waitAll([]<-chan struct{}{outDone}, ws.OutputGrace, p.ClosePTY)
	p.ClosePTY()

	x.ws.Close("")
	wg.Wait()

	return code
}

// serveExecControl applies resize and signal messages until the control
// socket closes; a close before the command exited means the client is
// gone: kill.
func serveExecControl(c *ws.Conn, p execProcess, kill func()) {
	_ = ws.ServeControl(c, ws.Controls{
		Resize: func(w, h int) { _ = p.Resize(w, h) },
		Signal: func(sig int) { _ = p.Signal(syscall.Signal(sig)) },
	})

	kill()
}

// waitAll waits for every channel; after grace it calls cut once and keeps
// waiting.
func waitAll(chans []<-chan struct{}, grace time.Duration, cut func()) {
	t := time.NewTimer(grace)
	defer t.Stop()

	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			cut()
			<-ch
		}
	}
}
