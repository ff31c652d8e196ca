package fakeapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// The exec and console side of the fake, following docs/lxd-api.md §7.6–7.7:
// websocket-class operations whose streams are connected with
// GET /1.0/operations/{id}/websocket?secret=S, binary payloads, empty text
// barriers, JSON control messages and metadata.return at the end.

// ExecProcess is what a fake command sees.
type ExecProcess struct {
	Req api.InstanceExecPost
	// Stdin ends (EOF) at the client's barrier.
	Stdin io.Reader
	// Stdout and Stderr go to sockets 1 and 2; in interactive mode both are
	// the terminal (socket 0).
	Stdout io.Writer
	Stderr io.Writer
	// Control delivers the control messages the client sends.
	Control <-chan api.InstanceExecControl
	// Killed is closed when the client went away (control socket closed
	// before the command ended); the command should return then.
	Killed <-chan struct{}
}

// ExecFunc runs a fake command and returns its exit code.
type ExecFunc func(p *ExecProcess) int

// wsTimeout is how long an operation waits for its websockets (LXD: 5 s).
const wsTimeout = 5 * time.Second

// wsOp is the websocket side of one operation.
type wsOp struct {
	secrets  map[string]string // fd → secret
	required []string
	ready    chan struct{} // closed once every required fd is connected

	mu    sync.Mutex
	conns map[string]*ws.Conn
}

func (s *Server) streamRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /1.0/operations/{id}/websocket", s.getOperationWebsocket)
	mux.HandleFunc("POST /1.0/instances/{name}/exec", s.postExec)
	mux.HandleFunc("POST /1.0/instances/{name}/console", s.postConsole)
	mux.HandleFunc("GET /1.0/instances/{name}/console", s.getConsoleLog)
	mux.HandleFunc("DELETE /1.0/instances/{name}/console", s.deleteConsoleLog)
}

// ControlMessages returns the control messages received so far, by all sessions.
func (s *Server) ControlMessages() []api.InstanceExecControl {
	s.mu.Lock()
	defer s.mu.Unlock()

	return append([]api.InstanceExecControl(nil), s.controls...)
}

// SetConsoleLog replaces the console log served by GET .../console.
func (s *Server) SetConsoleLog(log string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.consoleLog = []byte(log)
}

// ConsoleLog returns the current console log.
func (s *Server) ConsoleLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return string(s.consoleLog)
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)

	return hex.EncodeToString(b)
}

// newWSOp registers a Running websocket operation with one secret per fd
// and returns it with its websocket state.
func (s *Server) newWSOp(desc, name string, fds []string, required []string, extra map[string]any) (*api.Operation, *wsOp) {
	wo := &wsOp{secrets: map[string]string{}, required: required, ready: make(chan struct{}), conns: map[string]*ws.Conn{}}
	meta := map[string]any{}
	for k, v := range extra {
		meta[k] = v
	}

	secrets := map[string]any{}
	for _, fd := range fds {
		wo.secrets[fd] = newSecret()
		secrets[fd] = wo.secrets[fd]
	}

	meta["fds"] = secrets

	now := time.Now().UTC()
	res := "/1.0/instances/" + name
	op := &api.Operation{
		ID: uuid.NewString(), Class: api.OperationClassWebsocket, Description: desc,
		CreatedAt: now, UpdatedAt: now, Status: api.Running.String(), StatusCode: api.Running,
		Resources: map[string][]string{"instances": {res}, "containers": {res}},
		Metadata:  meta, Location: "none",
	}

	s.mu.Lock()
	s.ops[op.ID] = op
	if s.wsOps == nil {
		s.wsOps = map[string]*wsOp{}
	}
	s.wsOps[op.ID] = wo
	s.mu.Unlock()

	return op, wo
}

// finishOp sets the final state of an operation (after fn updated it under
// the lock) and broadcasts it.
func (s *Server) finishOp(op *api.Operation, fn func(op *api.Operation)) {
	s.mu.Lock()
	// Readers copy operations shallowly: never mutate a published map.
	op.Metadata = copyMap(op.Metadata)
	fn(op)
	op.Status = op.StatusCode.String()
	op.UpdatedAt = time.Now().UTC()
	final := *op
	final.Metadata = copyMap(op.Metadata)
	delete(s.wsOps, op.ID)
	s.mu.Unlock()

	s.broadcastOp(final)
}

func copyMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}

	return out
}

func writeAsync(w http.ResponseWriter, s *Server, op *api.Operation) {
	s.mu.Lock()
	snapshot := *op
	snapshot.Metadata = copyMap(op.Metadata)
	s.mu.Unlock()

	s.broadcastOp(snapshot)
	w.Header().Set("Location", "/1.0/operations/"+op.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"type": "async", "status": "Operation created", "status_code": 100,
		"operation": "/1.0/operations/" + op.ID, "error_code": 0, "error": "", "metadata": snapshot})
}

func (s *Server) getOperationWebsocket(w http.ResponseWriter, r *http.Request) {
	secret := r.URL.Query().Get("secret")
	if secret == "" {
		fail(w, 400, "Missing secret")
		return
	}

	s.mu.Lock()
	wo := s.wsOps[r.PathValue("id")]
	s.mu.Unlock()

	if wo == nil {
		fail(w, 404, "Operation not found or not running")
		return
	}

	fd := ""
	for k, v := range wo.secrets {
		if v == secret {
			fd = k
		}
	}

	if fd == "" {
		fail(w, 403, "Invalid secret")
		return
	}

	wo.mu.Lock()
	_, dup := wo.conns[fd]
	if !dup {
		wo.conns[fd] = nil // in progress: readiness waits for it, as berthd's
	}
	wo.mu.Unlock()

	if dup {
		fail(w, 400, "Only one connection per fd allowed")
		return
	}

	conn, err := ws.Upgrade(w, r)

	wo.mu.Lock()
	defer wo.mu.Unlock()

	if err != nil {
		delete(wo.conns, fd)
		return
	}

	wo.conns[fd] = conn
	for _, req := range wo.required {
		if wo.conns[req] == nil {
			return
		}
	}

	for _, c := range wo.conns {
		if c == nil {
			return
		}
	}

	select {
	case <-wo.ready:
	default:
		close(wo.ready)
	}
}

// waitReady waits for the required websockets; false means the operation
// was failed for a timeout.
func (s *Server) waitReady(op *api.Operation, wo *wsOp) bool {
	select {
	case <-wo.ready:
		return true
	case <-time.After(wsTimeout):
	}

	s.finishOp(op, func(op *api.Operation) {
		op.StatusCode = api.Failure
		op.Err = "Timed out waiting for websockets to connect"
	})

	wo.mu.Lock()
	for _, c := range wo.conns {
		if c != nil {
			_ = c.Close()
		}
	}
	wo.mu.Unlock()

	return false
}

func (wo *wsOp) conn(fd string) *ws.Conn {
	wo.mu.Lock()
	defer wo.mu.Unlock()

	return wo.conns[fd]
}

// requireRunning answers 400 unless the instance exists and runs.
func (s *Server) requireRunning(w http.ResponseWriter, r *http.Request) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	inst, ok := s.lookupInstance(w, r)
	if !ok {
		return "", false
	}

	if inst.StatusCode != api.Running {
		fail(w, 400, "Instance is not running")
		return "", false
	}

	return inst.Name, true
}

func (s *Server) postExec(w http.ResponseWriter, r *http.Request) {
	req := api.InstanceExecPost{}
	err := json.NewDecoder(r.Body).Decode(&req)
	if err != nil {
		fail(w, 400, "Invalid request body: "+err.Error())
		return
	}

	name, ok := s.requireRunning(w, r)
	if !ok {
		return
	}

	fds := []string{"0", "1", "2", "control"}
	required := []string{"0", "1", "2"}
	if req.Interactive {
		fds = []string{"0", "control"}
		required = []string{"0", "control"}
	}

	extra := map[string]any{"command": req.Command, "environment": req.Environment, "interactive": req.Interactive}
	op, wo := s.newWSOp("Executing command", name, fds, required, extra)
	if !req.WaitForWS {
		// Detached: no streams at all.
		wo.required = nil
		close(wo.ready)
	}

	writeAsync(w, s, op)

	go s.runExec(op, wo, req)
}

// runExec plays the server side of one exec session.
func (s *Server) runExec(op *api.Operation, wo *wsOp, req api.InstanceExecPost) {
	if !s.waitReady(op, wo) {
		return
	}

	control := make(chan api.InstanceExecControl, 64)
	killed := make(chan struct{})
	exited := make(chan struct{})
	p := &ExecProcess{Req: req, Control: control, Killed: killed, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}

	// flushed are closed once an output stream has sent its barrier.
	var flushed []<-chan struct{}
	var closers []io.Closer

	if req.WaitForWS {
		stdinR, stdinW := io.Pipe()
		c0 := wo.conn("0")
		go func() {
			<-ws.Receive(c0, stdinW)
			_ = stdinW.Close()
		}()

		p.Stdin = stdinR
		closers = append(closers, stdinR)
		if req.Interactive {
			outR, outW := io.Pipe()
			p.Stdout, p.Stderr = outW, outW
			flushed = append(flushed, ws.Send(c0, outR))
			closers = append(closers, outW)
		} else {
			for i, fd := range []string{"1", "2"} {
				outR, outW := io.Pipe()
				if i == 0 {
					p.Stdout = outW
				} else {
					p.Stderr = outW
				}

				flushed = append(flushed, ws.Send(wo.conn(fd), outR))
				closers = append(closers, outW)
			}
		}

		go s.readControl(wo, control, killed, exited)
	}

	fn := s.ExecFunc
	if fn == nil {
		fn = BuiltinExec
	}

	code := fn(p)
	close(exited)

	for _, c := range closers {
		_ = c.Close()
	}

	for _, f := range flushed {
		<-f
	}

	s.finishOp(op, func(op *api.Operation) {
		op.Metadata["return"] = code
		op.StatusCode = api.Success
		switch code {
		case 127:
			op.StatusCode, op.Err = api.Failure, "Command not found"
		case 126:
			op.StatusCode, op.Err = api.Failure, "Command not executable"
		}
	})

	wo.mu.Lock()
	for _, c := range wo.conns {
		if c != nil {
			_ = ws.Close(c, "")
		}
	}
	wo.mu.Unlock()
}

// readControl forwards control messages until the socket ends; an end
// before the command exited means the client went away.
func (s *Server) readControl(wo *wsOp, out chan<- api.InstanceExecControl, killed, exited chan struct{}) {
	c := wo.conn("control")
	if c == nil {
		return
	}

	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			select {
			case <-exited:
			default:
				close(killed)
			}

			return
		}

		msg := api.InstanceExecControl{}
		err = json.Unmarshal(data, &msg)
		if err != nil {
			continue
		}

		s.mu.Lock()
		s.controls = append(s.controls, msg)
		s.mu.Unlock()

		select {
		case out <- msg:
		default:
		}
	}
}

// BuiltinExec is the default ExecFunc. Commands: `cat` (stdin to stdout),
// `echo ARGS...`, `exit N`, `wait-signal` (returns 128+N on the first signal
// control message), anything else exits 127.
func BuiltinExec(p *ExecProcess) int {
	cmd := p.Req.Command
	if len(cmd) == 0 {
		return 127
	}

	switch cmd[0] {
	case "cat":
		_, _ = io.Copy(p.Stdout, p.Stdin)
		return 0
	case "echo":
		_, _ = fmt.Fprintln(p.Stdout, strings.Join(cmd[1:], " "))
		return 0
	case "exit":
		if len(cmd) < 2 {
			return 0
		}

		n, _ := strconv.Atoi(cmd[1])
		return n
	case "wait-signal":
		for {
			select {
			case m := <-p.Control:
				if m.Command == api.ExecControlSignal {
					return 128 + m.Signal
				}
			case <-p.Killed:
				return 137
			}
		}
	}

	return 127
}
