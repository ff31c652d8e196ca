package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Console attach: the monitor proxies the console over its socket rather
// than passing the pty master out. It stays the only reader of the master,
// so the ring keeps everything (also what an attached user sees) and a
// daemon that crashes mid-session leaves nothing behind.
//
//	{"op":"console-attach"}            ───▶
//	                                   ◀───  {"ok":true}   or {"ok":false,"error":"console busy"}
//	raw input bytes                    ───▶  written to the master
//	                                   ◀───  raw console output, until either side closes
//	{"op":"console-resize","width":W,"height":H}   (on a fresh connection)
//	{"op":"console-clear"}                         (empties the ring)
//
// One client at a time: a second attach gets "console busy" (ErrConsoleBusy).

// ErrConsoleBusy means another client is attached to the console.
var ErrConsoleBusy = errors.New("console is already attached")

const errTextConsoleBusy = "console busy"

// attachQueue bounds the output waiting for an attached client; a client
// that falls this far behind is detached rather than stalling the console.
const attachQueue = 256

// consoleMux hands console output to the attached client, if any.
type consoleMux struct {
	mu   sync.Mutex
	sess *consoleSession
}

type consoleSession struct {
	out    chan []byte
	gone   chan struct{} // closed when the session must end (client too slow)
	goneMu sync.Once
}

func (s *consoleSession) end() { s.goneMu.Do(func() { close(s.gone) }) }

func (x *consoleMux) attach() (*consoleSession, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()

	if x.sess != nil {
		return nil, false
	}

	x.sess = &consoleSession{out: make(chan []byte, attachQueue), gone: make(chan struct{})}

	return x.sess, true
}

func (x *consoleMux) detach(s *consoleSession) {
	x.mu.Lock()
	defer x.mu.Unlock()

	if x.sess == s {
		x.sess = nil
	}
}

// write passes a copy of console output to the attached client without
// ever blocking the drain.
func (x *consoleMux) write(b []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()

	if x.sess == nil {
		return
	}

	select {
	case x.sess.out <- append([]byte(nil), b...):
	default:
		x.sess.end()
	}
}

// master is the current init's console master (a reboot replaces it).
func (m *monitor) master() *os.File {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.init.master
}

// consoleAttach serves one attached client until it or the container goes.
func (m *monitor) consoleAttach(c net.Conn, enc *json.Encoder) {
	sess, ok := m.mux.attach()
	if !ok {
		_ = enc.Encode(response{Error: errTextConsoleBusy})
		return
	}

	defer m.mux.detach(sess)

	err := enc.Encode(response{OK: true})
	if err != nil {
		return
	}

	m.consoleSession(c, sess)
}

// adoptConsole takes over a client the holder had attached (resume.go).
func (m *monitor) adoptConsole(c net.Conn) {
	sess, ok := m.mux.attach()
	if !ok {
		return
	}

	defer m.mux.detach(sess)

	m.consoleSession(c, sess)
}

func (m *monitor) consoleSession(c net.Conn, sess *consoleSession) {
	input := make(chan struct{})

	go func() {
		defer close(input)

		buf := make([]byte, 32<<10)

		for {
			n, err := c.Read(buf)
			if n > 0 {
				_, werr := m.master().Write(buf[:n])
				if werr != nil {
					return
				}
			}

			if err != nil {
				return
			}
		}
	}()

	// The console is free again before the client sees its end close: a client
	// that releases and waits for that close (lxd/instance_console.go) can attach
	// again at once.
	defer func() {
		m.mux.detach(sess)
		_ = c.Close()
		<-input
	}()

	for {
		select {
		case b := <-sess.out:
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))

			_, err := c.Write(b)
			if err != nil {
				return
			}
		case <-input:
			return
		case <-sess.gone:
			return
		case <-m.done:
			return
		}
	}
}

func (m *monitor) consoleResize(w, h int) error {
	if w <= 0 || h <= 0 || w > 0xffff || h > 0xffff {
		return fmt.Errorf("invalid console size %dx%d", w, h)
	}

	// Not Fd(): that would put the master in blocking mode, and the drain's
	// Read then blocks a thread that Close cannot wake.
	rc, err := m.master().SyscallConn()
	if err != nil {
		return err
	}

	cerr := rc.Control(func(fd uintptr) {
		err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(w), Row: uint16(h)})
	})

	return errors.Join(cerr, err)
}

// ConsoleAttach attaches to the container's console: what is written to
// the returned connection goes to /dev/console, and the console's output
// comes back on it from now on (earlier output is in ConsoleLog). Closing
// it detaches. ErrConsoleBusy if another client is attached.
func (m *Monitor) ConsoleAttach() (net.Conn, error) {
	c, err := net.DialTimeout("unix", filepath.Join(m.runDir, socketFile), dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}

	_ = c.SetDeadline(time.Now().Add(dialTimeout))

	err = json.NewEncoder(c).Encode(request{Op: opConsoleAttach})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("attaching to console: %w", err)
	}

	// Read the answer byte by byte: nothing of the stream may be buffered away.
	line, err := bufio.NewReaderSize(oneByteReader{c}, 16).ReadBytes('\n')
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("attaching to console: %w", err)
	}

	var resp response

	err = json.Unmarshal(line, &resp)
	if err == nil && !resp.OK {
		switch {
		case resp.Error == errTextConsoleBusy:
			err = ErrConsoleBusy
		case resp.Exit != nil:
			err = ErrNotRunning
		default:
			err = errors.New(resp.Error)
		}
	}

	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("attaching to console: %w", err)
	}

	_ = c.SetDeadline(time.Time{})

	return c, nil
}

// oneByteReader reads at most one byte per call, so a bufio.Reader on it
// never reads past the line it is asked for.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}

	return o.r.Read(p)
}

// ConsoleResize sets the console's terminal size.
func (m *Monitor) ConsoleResize(width, height int) error {
	_, err := m.callConsole(request{Op: opConsoleResize, Width: width, Height: height})
	return err
}

// ClearConsoleLog empties the console ring buffer.
func (m *Monitor) ClearConsoleLog() error {
	_, err := m.callConsole(request{Op: opConsoleClear})
	return err
}

func (m *Monitor) callConsole(req request) (*response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()

	return m.call(ctx, req)
}

// ConsoleLogPath is the console log a stopped container leaves in runDir.
func ConsoleLogPath(runDir string) string { return filepath.Join(runDir, consoleFile) }
