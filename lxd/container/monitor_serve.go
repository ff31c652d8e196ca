package container

import (
	"encoding/json"
	"io"
	"net"
	"time"
)

// serveStart starts accepting; holdMu held.
func (m *monitor) serveStart() {
	m.served = make(chan struct{})
	go m.serve(m.served)
}

// serve accepts until the listener fails: closed by finish, or its deadline
// set by a hold.
func (m *monitor) serve(done chan struct{}) {
	defer close(done)

	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}

		m.serveConn(c, m.handle)
	}
}

// serveConn serves one connection with f.
func (m *monitor) serveConn(c net.Conn, f func(net.Conn)) {
	m.conns.Add(1)
	m.enter()

	go func() {
		defer m.conns.Done()
		defer m.leave()
		defer func() { _ = c.Close() }()

		f(c)
	}()
}

func (m *monitor) waitConns(max time.Duration) {
	ch := make(chan struct{})

	go func() {
		m.conns.Wait()
		close(ch)
	}()

	select {
	case <-ch:
	case <-time.After(max):
	}
}

// maxRequest bounds one request: the largest (set-mounts) is a few KB. The
// holder hands any request it does not parse to Go, endless ones included,
// and a decoder without a limit buffers all of it.
const maxRequest = 1 << 20

func (m *monitor) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))

	var req request

	err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req)
	if err != nil {
		return
	}

	_ = c.SetReadDeadline(time.Time{})
	enc := json.NewEncoder(c)

	select {
	case <-m.done:
		_ = enc.Encode(response{Error: errStopped.Error(), Exit: m.exit})
		return
	default:
	}

	switch req.Op {
	case opState:
		_ = enc.Encode(response{OK: true, State: m.state()})
	case opStop:
		m.stop(time.Duration(req.TimeoutNs), req.Force, stopByDaemon)
		<-m.done
		_ = enc.Encode(response{OK: true, Exit: m.exit})
	case opFreeze, opThaw:
		f := m.cg.Freeze
		if req.Op == opThaw {
			f = m.cg.Thaw
		}

		err = f()
		if err != nil {
			_ = enc.Encode(response{Error: err.Error()})
			return
		}

		_ = enc.Encode(response{OK: true, State: m.state()})
	case opStats:
		st, err := m.cg.Stats()
		if err != nil {
			_ = enc.Encode(response{Error: err.Error()})
			return
		}

		_ = enc.Encode(response{OK: true, Stats: &st})
	case opConsoleLog:
		_ = enc.Encode(response{OK: true, Console: m.console.Bytes()})
	case opWatch:
		m.watch(c, enc)
	case opConsoleAttach:
		m.consoleAttach(c, enc)
	case opConsoleResize:
		err = m.consoleResize(req.Width, req.Height)
		if err != nil {
			_ = enc.Encode(response{Error: err.Error()})
			return
		}

		_ = enc.Encode(response{OK: true})
	case opConsoleClear:
		m.console.Reset()
		_ = enc.Encode(response{OK: true})
	case opSetMounts:
		err = m.setMounts(req.Mounts, req.Unmounts)
		if err != nil {
			_ = enc.Encode(response{Error: err.Error()})
			return
		}

		_ = enc.Encode(response{OK: true})
	default:
		_ = enc.Encode(response{Error: "unknown op " + string(req.Op)})
	}
}

// watch acknowledges with the state, then sends the exit once the
// container has stopped, or returns early if the client goes away.
func (m *monitor) watch(c net.Conn, enc *json.Encoder) {
	err := enc.Encode(response{OK: true, State: m.state()})
	if err != nil {
		return
	}

	m.waitExit(c, enc)
}

// waitExit is a watch once acknowledged; it does not keep the monitor from
// holding, which takes the connection along.
func (m *monitor) waitExit(c net.Conn, enc *json.Encoder) {
	m.park(c)
	defer m.unpark(c)

	gone := make(chan struct{})

	go func() {
		var b [1]byte
		_, _ = c.Read(b[:]) // returns when the client closes
		close(gone)
	}()

	select {
	case <-m.done:
		_ = enc.Encode(response{OK: true, Exit: m.exit})
	case <-gone:
	}
}
