package ws

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// MaxControlMessage bounds one control message. A real one is under 100
// bytes; a larger one fails the control socket (the server then treats the
// client as gone).
const MaxControlMessage = 4 << 10

// Bounds of what a control message may ask for: a window size is two
// uint16 (TIOCSWINSZ), and Linux numbers signals 1 to 64.
const (
	maxTermSize = 1<<16 - 1
	maxSignal   = 64
)

// Control is a decoded, checked control message.
type Control struct {
	Command string // api.ExecControlWindowResize or api.ExecControlSignal
	Width   int    // window-resize
	Height  int    // window-resize
	Signal  int    // signal
}

// ResizeMessage is the window-resize message for a terminal of width×height.
func ResizeMessage(width, height int) api.InstanceExecControl {
	return api.InstanceExecControl{
		Command: api.ExecControlWindowResize,
		Args:    map[string]string{"width": strconv.Itoa(width), "height": strconv.Itoa(height)},
	}
}

// SignalMessage is the message that forwards signal sig to the command.
func SignalMessage(sig int) api.InstanceExecControl {
	return api.InstanceExecControl{Command: api.ExecControlSignal, Signal: sig}
}

// ParseControl decodes one control message and checks its values.
func ParseControl(data []byte) (Control, error) {
	if len(data) > MaxControlMessage {
		return Control{}, fmt.Errorf("control message of %d bytes is over %d", len(data), MaxControlMessage)
	}

	var msg api.InstanceExecControl

	err := json.Unmarshal(data, &msg)
	if err != nil {
		return Control{}, fmt.Errorf("malformed control message: %w", err)
	}

	c := Control{Command: msg.Command}

	switch msg.Command {
	case api.ExecControlWindowResize:
		c.Width, err = termSize(msg.Args["width"])
		if err != nil {
			return Control{}, fmt.Errorf("window-resize width: %w", err)
		}

		c.Height, err = termSize(msg.Args["height"])
		if err != nil {
			return Control{}, fmt.Errorf("window-resize height: %w", err)
		}
	case api.ExecControlSignal:
		if msg.Signal < 1 || msg.Signal > maxSignal {
			return Control{}, fmt.Errorf("signal %d is not between 1 and %d", msg.Signal, maxSignal)
		}

		c.Signal = msg.Signal
	default:
		return Control{}, fmt.Errorf("unknown control command %q", msg.Command)
	}

	return c, nil
}

func termSize(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}

	if n < 0 || n > maxTermSize {
		return 0, fmt.Errorf("%d is not between 0 and %d", n, maxTermSize)
	}

	return n, nil
}

// Controls is what a server does with control messages; a nil func ignores
// its kind.
type Controls struct {
	Resize func(width, height int)
	Signal func(sig int)
}

// ServeControl applies the control messages read from conn until the socket
// ends, and returns the error that ended it (never nil). Malformed or
// out-of-range messages are skipped; one over MaxControlMessage fails the
// socket. It must be the only reader of conn.
func ServeControl(conn *Conn, h Controls) error {
	conn.SetReadLimit(MaxControlMessage)

	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}

		c, err := ParseControl(data)
		if err != nil {
			continue
		}

		switch {
		case c.Command == api.ExecControlWindowResize && h.Resize != nil:
			h.Resize(c.Width, c.Height)
		case c.Command == api.ExecControlSignal && h.Signal != nil:
			h.Signal(c.Signal)
		}
	}
}

// ControlConn is the client's end of a control socket: writes are
// serialised, as gorilla allows one writer at a time.
type ControlConn struct {
	mu   sync.Mutex
	conn *Conn
}

// NewControlConn wraps conn, and keeps reading it so that pings and close
// frames are answered.
func NewControlConn(conn *Conn) *ControlConn {
	go func() { _ = Drain(conn) }()
	return &ControlConn{conn: conn}
}

// Send writes one control message.
func (c *ControlConn) Send(msg api.InstanceExecControl) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding control message: %w", err)
	}

	if len(data) > MaxControlMessage {
		return errors.New("control message too large")
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	_ = c.conn.SetWriteDeadline(time.Now().Add(controlTimeout))

	err = c.conn.WriteMessage(websocket.TextMessage, data)
	if err != nil {
		return fmt.Errorf("sending %s control message: %w", msg.Command, err)
	}

	return nil
}

// SendClose writes a normal close frame with reason, which ends the session
// from the client's side (an exec'd command is killed, a console detached).
// The connection stays open for the server's answer.
func (c *ControlConn) SendClose(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	_ = SendClose(c.conn, reason, closeTimeout)
}
