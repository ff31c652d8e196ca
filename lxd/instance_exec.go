package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// outputGrace is how long output may still flow after the command exited:
// a background child holding stdout open must not hold the session.
const outputGrace = 2 * time.Second

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
	if req.WaitForWS {
		if req.Interactive {
			x.ws = newWSSession([]string{"0", "control"}, []string{"0", "control"})
		} else {
			// LXD does not wait for control: old clients never open it.
			x.ws = newWSSession([]string{"0", "1", "2", "control"}, []string{"0", "1", "2"})
		}

		fds = x.ws.fds()
	}

	metadata["fds"] = fds

	var onConnect operations.ConnectFunc
	if x.ws != nil {
		onConnect = x.ws.connect
	}

	op, err := d.ops.Create(api.OperationClassWebsocket, "Executing command", instanceResources(name), metadata,
		x.run, onConnect, nil)
	if err != nil {
		return response.InternalError(err)
	}

	if !req.WaitForWS && req.RecordOutput {
		x.outputs = map[string]string{
			"1": d.instances.ExecOutputPath(name, "exec_"+op.ID()+".stdout"),
			"2": d.instances.ExecOutputPath(name, "exec_"+op.ID()+".stderr"),
		}

		_ = op.UpdateMetadata(map[string]any{"output": map[string]string{
			"1": "/1.0/instances/" + name + "/logs/" + filepath.Base(x.outputs["1"]),
			"2": "/1.0/instances/" + name + "/logs/" + filepath.Base(x.outputs["2"]),
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
	ws      *wsSession        // nil without wait-for-websocket
	outputs map[string]string // record-output files by fd
}

func (x *execSession) run(ctx context.Context, op *operations.Operation) error {
	if x.ws != nil {
		defer x.ws.close("")

		err := x.ws.wait(ctx)
		if err != nil {
			return err
		}
	}

	code, err := x.exec(ctx)

	if code != nil {
		_ = op.UpdateMetadata(map[string]any{"return": *code})
	}

	return err
}

// exec runs the command with the session's streams and returns its exit
// code (nil if it never started) once all output has been sent.
func (x *execSession) exec(ctx context.Context) (*int, error) {
	a := instance.ExecArgs{
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
func (x *execSession) runPipes(p *nsexec.Process, st *stdio) int {
	var wg sync.WaitGroup

	exited := make(chan struct{})

	if x.ws == nil {
		code, _ := p.Wait()
		return code
	}

	// Taken now: closing the session forgets them.
	control, stdin, stdout, stderr := x.ws.conn("control"), x.ws.conn("0"), x.ws.conn("1"), x.ws.conn("2")
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
		<-ws.MirrorWrite(stdin, st.stdinW)
		_ = st.stdinW.Close()
	}()

	outDone := []chan struct{}{ws.MirrorRead(stdout, st.stdoutR), ws.MirrorRead(stderr, st.stderrR)}

	// Nothing comes on 1 and 2, but someone must read them for pongs and
	// close frames; without a control socket a failure there is how a
	// vanished client shows (as LXD).
	for _, conn := range []*ws.Conn{stdout, stderr} {
		wg.Add(1)

		go func() {
			defer wg.Done()

			_ = drain(conn) // returns once the socket closes or fails
			if control == nil {
				kill()
			}
		}()
	}

	if control != nil {
		wg.Add(1)

		go func() {
			defer wg.Done()
			x.serveControl(control, p, kill)
		}()
	}

	code, _ := p.Wait()
	close(exited)

	// Output still buffered in the pipes goes out; a background child
	// holding them open is cut off after a grace period.
	waitAll(outDone, outputGrace, func() {
		_ = st.stdoutR.Close()
		_ = st.stderrR.Close()
	})

	// Unblocks a stdin copy stuck on a full pipe nobody reads any more.
	_ = st.stdinW.Close()

	// Closing the sockets ends the readers above.
	x.ws.close("")
	wg.Wait()

	return code
}

// runPTY mirrors the terminal on socket 0 and returns the exit code.
func (x *execSession) runPTY(p *nsexec.Process) int {
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
	conn, control := x.ws.conn("0"), x.ws.conn("control")

	// Client → terminal until its barrier; LXD then stops writing. The
	// master stays open until the command has exited.
	wg.Add(1)

	go func() {
		defer wg.Done()
		<-ws.MirrorWrite(conn, master)
	}()

	outDone := ws.MirrorRead(conn, master)

	wg.Add(1)

	go func() {
		defer wg.Done()
		x.serveControl(control, p, kill)
	}()

	code, _ := p.Wait()
	close(exited)

	waitAll([]chan struct{}{outDone}, outputGrace, p.ClosePTY)
	p.ClosePTY()

	x.ws.close("")
	wg.Wait()

	return code
}

// serveControl handles control messages until the socket closes; a close
// before the command exited means the client is gone: kill.
func (x *execSession) serveControl(c *ws.Conn, p *nsexec.Process, kill func()) {
	c.SetReadLimit(ws.MaxControlMessage)

	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			kill()
			return
		}

		msg, err := ws.ParseControl(data)
		if err != nil {
			continue // LXD ignores what it does not understand
		}

		switch msg.Command {
		case api.ExecControlWindowResize:
			_ = p.Resize(msg.Width, msg.Height)
		case api.ExecControlSignal:
			_ = p.Signal(syscall.Signal(msg.Signal))
		}
	}
}

// drain reads and discards messages until the socket fails or closes.
func drain(c *ws.Conn) error {
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return err
		}

		_, err = io.Copy(io.Discard, r)
		if err != nil {
			return err
		}
	}
}

// waitAll waits for every channel; after grace it calls cut once and keeps
// waiting.
func waitAll(chans []chan struct{}, grace time.Duration, cut func()) {
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

// stdio is the pipes of a non-interactive exec: the daemon's ends and the
// command's.
type stdio struct {
	files   []*os.File // every end, for closeAll
	child   []*os.File // the command's ends
	stdinW  *os.File
	stdoutR *os.File
	stderrR *os.File
}

// openStdio sets a's stdio: pipes with websockets, /dev/null or the
// record-output files without.
func (x *execSession) openStdio(a *instance.ExecArgs) (*stdio, error) {
	st := &stdio{}
	if a.PTY {
		return st, nil
	}

	if x.ws == nil {
		return st, x.openDetached(a, st)
	}

	for i := 0; i < 3; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			st.closeAll()
			return nil, fmt.Errorf("creating pipe: %w", err)
		}

		st.files = append(st.files, r, w)

		switch i {
		case 0:
			a.Stdin, st.stdinW = r, w
			st.child = append(st.child, r)
		case 1:
			a.Stdout, st.stdoutR = w, r
			st.child = append(st.child, w)
		case 2:
			a.Stderr, st.stderrR = w, r
			st.child = append(st.child, w)
		}
	}

	return st, nil
}

// openDetached gives a command run without websockets /dev/null as stdin
// and its record-output files (or /dev/null) as stdout and stderr.
func (x *execSession) openDetached(a *instance.ExecArgs, st *stdio) error {
	open := func(path string, flag int) (*os.File, error) {
		f, err := os.OpenFile(path, flag, 0o600)
		if err != nil {
			return nil, err
		}

		st.files = append(st.files, f)
		st.child = append(st.child, f)

		return f, nil
	}

	var err error

	a.Stdin, err = open(os.DevNull, os.O_RDONLY)
	if err != nil {
		return err
	}

	for fd, dst := range map[string]**os.File{"1": &a.Stdout, "2": &a.Stderr} {
		path := os.DevNull
		flag := os.O_WRONLY

		if x.outputs != nil {
			path, flag = x.outputs[fd], os.O_WRONLY|os.O_CREATE|os.O_TRUNC

			err = os.MkdirAll(filepath.Dir(path), 0o700)
			if err != nil {
				return err
			}
		}

		*dst, err = open(path, flag)
		if err != nil {
			return err
		}
	}

	return nil
}

// closeChildEnds drops the daemon's copies of the command's ends, so EOF
// arrives when the command closes them.
func (s *stdio) closeChildEnds() {
	for _, f := range s.child {
		_ = f.Close()
	}
}

func (s *stdio) closeAll() {
	for _, f := range s.files {
		_ = f.Close()
	}
}
