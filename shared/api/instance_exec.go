package api

// InstanceExecPost is the body of POST /1.0/instances/{name}/exec.
type InstanceExecPost struct {
	Command      []string          `json:"command" yaml:"command"`
	WaitForWS    bool              `json:"wait-for-websocket" yaml:"wait-for-websocket"`
	Interactive  bool              `json:"interactive" yaml:"interactive"`
	Environment  map[string]string `json:"environment" yaml:"environment"`
	Width        int               `json:"width" yaml:"width"`
	Height       int               `json:"height" yaml:"height"`
	RecordOutput bool              `json:"record-output" yaml:"record-output"`
	User         uint32            `json:"user" yaml:"user"`
	Group        uint32            `json:"group" yaml:"group"`
	Cwd          string            `json:"cwd" yaml:"cwd"`
}

// Exec control commands sent on the "control" websocket.
const (
	ExecControlWindowResize = "window-resize"
	ExecControlSignal       = "signal"
)

// InstanceExecControl is one JSON message on an exec or console "control"
// websocket. For window-resize, Args holds "width" and "height" as decimal
// strings (LXD's wire format); for signal, Signal is the signal number.
type InstanceExecControl struct {
	Command string            `json:"command" yaml:"command"`
	Args    map[string]string `json:"args" yaml:"args"`
	Signal  int               `json:"signal" yaml:"signal"`
}
