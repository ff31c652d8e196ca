package ws

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/shared/api"
)

// MaxControlMessage bounds one message on a "control" websocket: a resize or a signal
// is a few dozen bytes, and whoever reads one sets this as the connection's read limit.
const MaxControlMessage = 4096

// ErrUnknownControl is returned by ParseControl for a well-formed message with a command
// Berth does not handle; LXD ignores those, and so do the servers.
var ErrUnknownControl = errors.New("unknown control command")

// Control is a checked control message: for window-resize, Width and Height are
// 1..65535 (a winsize field); for signal, Signal is 1..64.
type Control struct {
	Command string
	Width   int
	Height  int
	Signal  int
}

// ParseControl decodes one control message (api.InstanceExecControl, LXD's wire format)
// and checks its arguments, so that what reaches a terminal or a process is in range.
func ParseControl(data []byte) (Control, error) {
	if len(data) > MaxControlMessage {
		return Control{}, fmt.Errorf("control message is larger than %d bytes", MaxControlMessage)
	}

	var msg api.InstanceExecControl

	err := json.Unmarshal(data, &msg)
	if err != nil {
		return Control{}, fmt.Errorf("decoding control message: %w", err)
	}

	c := Control{Command: msg.Command}
	switch msg.Command {
	case api.ExecControlWindowResize:
		c.Width, err = dimension(msg.Args, "width")
		if err == nil {
			c.Height, err = dimension(msg.Args, "height")
		}

		if err != nil {
			return Control{}, err
		}
	case api.ExecControlSignal:
		if msg.Signal < 1 || msg.Signal > 64 {
			return Control{}, fmt.Errorf("signal %d is not 1..64", msg.Signal)
		}

		c.Signal = msg.Signal
	default:
		return Control{}, fmt.Errorf("%w %q", ErrUnknownControl, msg.Command)
	}

	return c, nil
}

func dimension(args map[string]string, key string) (int, error) {
	n, err := strconv.Atoi(args[key])
	if err != nil || n < 1 || n > 0xffff {
		return 0, fmt.Errorf("window-resize %s %q is not 1..65535", key, args[key])
	}

	return n, nil
}

// Message encodes c in LXD's wire format, as ParseControl reads it.
func (c Control) Message() api.InstanceExecControl {
	msg := api.InstanceExecControl{Command: c.Command}
	switch c.Command {
	case api.ExecControlWindowResize:
		msg.Args = map[string]string{"width": strconv.Itoa(c.Width), "height": strconv.Itoa(c.Height)}
	case api.ExecControlSignal:
		msg.Signal = c.Signal
	}

	return msg
}
