package ws

import (
	"errors"
	"time"
)

// The exec and console stream protocol (LXD's), written once for berthd and the
// Go client:
//
//   - POST /1.0/instances/NAME/exec (with wait-for-websocket) or .../console
//     answers with a websocket-class operation whose metadata MetaFDs maps
//     each stream name to its own secret.
//   - The client connects each stream with
//     GET /1.0/operations/ID/websocket?secret=S: FDControl first, so that it
//     is in place when the command starts, then the data streams at once
//     (ConnectStreams). A secret of no stream is refused with 403, a second
//     connection on a stream with 400 (Session.Connect).
//   - The server waits ConnectTimeout for the streams its Layout requires,
//     then fails the operation with ErrConnectTimeout.
//   - Data travels as binary messages of at most BufferSize bytes; an empty
//     text message (a barrier) ends one direction (Send, Receive).
//   - The client steers the session with JSON control messages on FDControl
//     (WriteControl, ServeControl): window-resize and signal, each at most
//     MaxControlMessage bytes.
//   - Exec ends when the command has exited and its output is flushed (output
//     may flow OutputGrace longer, for a background child holding the pipes):
//     a barrier on each output stream, the exit code in metadata MetaReturn,
//     the operation's end, then a normal close frame on every stream. A
//     control socket that closes before the command exited means the client
//     went away: the server kills the command.
//   - A console ends when the client closes FDControl (a close frame with
//     DetachReason) or the console goes away: the server sends
//     ConsoleGoodbye and a barrier on FDStdin, then closes every stream. One
//     client at a time: a second attach gets 409.

// Stream names: the keys of an operation's MetaFDs.
const (
	FDStdin   = "0" // stdin; in interactive exec and console the terminal both ways
	FDStdout  = "1"
	FDStderr  = "2"
	FDControl = "control"
)

// Operation metadata keys.
const (
	MetaFDs    = "fds"    // stream name → secret
	MetaReturn = "return" // the command's exit code, once it is known
)

// ConnectTimeout is how long the server waits for the required streams.
const ConnectTimeout = 5 * time.Second

// PingInterval keeps idle sessions alive through proxies, as LXD.
const PingInterval = 10 * time.Second

// OutputGrace is how long an exec's output may still flow after the command
// exited: a background child holding stdout open must not hold the session.
const OutputGrace = 2 * time.Second

// DetachReason is the close reason a client sends on the control socket when
// the user detaches from a console, as lxc does.
const DetachReason = "Detaching from console"

// ConsoleGoodbye is what the server writes to a console client before its
// barrier, as LXD does.
const ConsoleGoodbye = "\n\r"

// ErrConnectTimeout fails a session whose streams did not all connect in
// time. The text is LXD's.
var ErrConnectTimeout = errors.New("Timed out waiting for websockets to connect") //nolint:staticcheck // LXD's text

// Layout is the set of streams of one session.
type Layout struct {
	// Streams lists every stream, in the order a client connects them
	// (FDControl first).
	Streams []string
	// Required lists the streams the server waits for before it starts.
	Required []string
}

// ExecLayout is the streams of an exec. A non-interactive one does not
// wait for control, as LXD: old clients never open it.
func ExecLayout(interactive bool) Layout {
	if interactive {
		return Layout{Streams: []string{FDControl, FDStdin}, Required: []string{FDStdin, FDControl}}
	}

	return Layout{Streams: []string{FDControl, FDStdin, FDStdout, FDStderr}, Required: []string{FDStdin, FDStdout, FDStderr}}
}

// ConsoleLayout is the streams of a console attach.
func ConsoleLayout() Layout {
	return Layout{Streams: []string{FDControl, FDStdin}, Required: []string{FDStdin, FDControl}}
}

// SecretsOf reads MetaFDs from an operation's metadata, as the server sets it
// (map[string]string) or as JSON decodes it (map[string]any).
func SecretsOf(md map[string]any) (map[string]string, bool) {
	switch raw := md[MetaFDs].(type) {
	case map[string]string:
		out := make(map[string]string, len(raw))
		for k, v := range raw {
			out[k] = v
		}

		return out, true
	case map[string]any:
		out := make(map[string]string, len(raw))
		for k, v := range raw {
			s, ok := v.(string)
			if ok {
				out[k] = s
			}
		}

		return out, true
	}

	return nil, false
}

// ExitCodeOf reads MetaReturn from an operation's metadata, as the server
// sets it (int) or as JSON decodes it (float64).
func ExitCodeOf(md map[string]any) (int, bool) {
	switch v := md[MetaReturn].(type) {
	case int:
		return v, true
	case float64:
		return int(v), true
	}

	return 0, false
}
