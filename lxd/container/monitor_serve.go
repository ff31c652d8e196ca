package container

import (
	"encoding/json"
	"net"
	"time"
)

func (m *monitor) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}

		m.conns.Add(1)

		go func() {
			defer m.conns.Done()
			defer func() { _ = c.Close() }()

			m.handle(c)
		}()
	}
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

func (m *monitor) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))

	var req request

	err := json.NewDecoder(c).Decode(&req)
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
		m.stop(time.Duration(req.TimeoutNs), req.Force)
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
