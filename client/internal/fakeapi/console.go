package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// The fake console is a terminal in echo mode: on attach it prints a login
// prompt, then echoes every byte it receives. A close of the control socket
// detaches (LXD writes "\n\r" and closes both sockets).

// consolePrompt is what an attached client sees first; %s is the instance name.
const consolePrompt = "\r\nDebian GNU/Linux 12 %s console\r\n\r\n%s login: "

func (s *Server) postConsole(w http.ResponseWriter, r *http.Request) {
	req := api.InstanceConsolePost{}
	err := json.NewDecoder(r.Body).Decode(&req)
	if err != nil {
		fail(w, 400, "Invalid request body: "+err.Error())
		return
	}

	if req.Type != "" && req.Type != api.ConsoleTypeConsole {
		fail(w, 400, "Unknown console type "+req.Type)
		return
	}

	name, ok := s.requireRunning(w, r)
	if !ok {
		return
	}

	s.mu.Lock()
	if s.consoleBusy == nil {
		s.consoleBusy = map[string]bool{}
	}

	busy := s.consoleBusy[name]
	s.consoleBusy[name] = true
	s.mu.Unlock()

	if busy {
		fail(w, 409, "A console is already attached to this instance")
		return
	}

	op, wo := s.newWSOp("Showing console", name, []string{"0", "control"}, []string{"0", "control"}, nil)
	writeAsync(w, s, op)

	go s.runConsole(op, wo, name, req)
}

// lockedWriter writes binary messages on a connection that has several writers.
type lockedWriter struct {
	mu   sync.Mutex
	conn *ws.Conn
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	err := l.conn.WriteMessage(websocket.BinaryMessage, p)
	if err != nil {
		return 0, err
	}

	return len(p), nil
}

func (s *Server) runConsole(op *api.Operation, wo *wsOp, name string, req api.InstanceConsolePost) {
	defer func() {
		s.mu.Lock()
		delete(s.consoleBusy, name)
		s.mu.Unlock()
	}()

	if !s.waitReady(op, wo) {
		return
	}

	if req.Width > 0 {
		s.mu.Lock()
		s.controls = append(s.controls, api.InstanceExecControl{Command: "initial-size",
			Args: map[string]string{"width": strconv.Itoa(req.Width), "height": strconv.Itoa(req.Height)}})
		s.mu.Unlock()
	}

	data := wo.conn("0")
	out := &lockedWriter{conn: data}
	_, _ = out.Write([]byte(fmt.Sprintf(consolePrompt, name, name)))

	// Echo input like a tty would.
	ws.Receive(data, out)

	// The session lasts until the control socket closes.
	control := make(chan api.InstanceExecControl, 64)
	killed := make(chan struct{})
	s.readControl(wo, control, killed, make(chan struct{}))

	_, _ = out.Write([]byte("\n\r"))
	out.mu.Lock()
	_ = ws.Close(data, "")
	out.mu.Unlock()
	_ = wo.conn("control").Close()

	s.finishOp(op, func(op *api.Operation) { op.StatusCode = api.Success })
}

func (s *Server) getConsoleLog(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, ok := s.lookupInstance(w, r)
	log := append([]byte(nil), s.consoleLog...)
	s.mu.Unlock()

	if !ok {
		return
	}

	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(log)
}

func (s *Server) deleteConsoleLog(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	_, ok := s.lookupInstance(w, r)
	if !ok {
		return
	}

	s.consoleLog = nil
	sync200(w, map[string]any{}, "")
}
