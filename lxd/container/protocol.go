package container

import "time"

// The monitor protocol: JSON lines over RunDir/monitor.sock (mode 0600, in
// a 0700 RunDir). The client sends one request per connection and reads
// one response, except for watch, which stays open:
//
//	client                           monitor
//	{"op":"state"}             ───▶
//	                           ◀───  {"ok":true,"state":{...}}
//	{"op":"stop","timeout_ns":N,"force":false}
//	                                 SIGRTMIN+3 to init; SIGKILL after N
//	                           ◀───  {"ok":true,"exit":{...}}   once init is reaped and cleaned up
//	{"op":"freeze"|"thaw"}     ───▶
//	                           ◀───  {"ok":true,"state":{...}}
//	{"op":"stats"}             ───▶
//	                           ◀───  {"ok":true,"stats":{...}}
//	{"op":"console-log"}       ───▶
//	                           ◀───  {"ok":true,"console":"<base64>"}
//	{"op":"watch"}             ───▶
//	                           ◀───  {"ok":true,"state":{...}}  at once
//	                           ◀───  {"ok":true,"exit":{...}}   when the container has stopped
//
// Errors come back as {"ok":false,"error":"..."}. Console attach, resize
// and clear are described in console.go: the monitor proxies the console
// stream on the attach connection and keeps draining it into the ring.

// protocolVersion is reported in State; bump it on incompatible changes so
// a daemon can recognise a monitor started by an older binary.
const protocolVersion = 1

type op string

const (
	opState      op = "state"
	opStop       op = "stop"
	opFreeze     op = "freeze"
	opThaw       op = "thaw"
	opStats      op = "stats"
	opConsoleLog op = "console-log"
	opWatch      op = "watch"

	opConsoleAttach op = "console-attach"
	opConsoleResize op = "console-resize"
	opConsoleClear  op = "console-clear"

	// opSetMounts replaces Spec.Mounts and Spec.Unmounts: what the next
	// in-place reboot binds, and what the final stop unmounts.
	opSetMounts op = "set-mounts"
)

type request struct {
	Op        op    `json:"op"`
	TimeoutNs int64 `json:"timeout_ns,omitempty"`
	Force     bool  `json:"force,omitempty"`
	Width     int   `json:"width,omitempty"`  // console-resize
	Height    int   `json:"height,omitempty"` // console-resize

	Mounts   []Mount  `json:"mounts,omitempty"`   // set-mounts
	Unmounts []string `json:"unmounts,omitempty"` // set-mounts
}

type response struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	State   *State `json:"state,omitempty"`
	Exit    *Exit  `json:"exit,omitempty"`
	Stats   *Stats `json:"stats,omitempty"`
	Console []byte `json:"console,omitempty"`
}

// State is what the monitor reports about a running container.
type State struct {
	Name       string    `json:"name"`
	InitPID    int       `json:"init_pid"`
	MonitorPID int       `json:"monitor_pid"`
	Status     string    `json:"status"` // "running", "frozen", "stopping"
	StartedAt  time.Time `json:"started_at"`
	Reboots    int       `json:"reboots"` // in-place restarts after a reboot inside
	Version    int       `json:"version"`
}

// The startup result the monitor writes as one JSON line on the pipe it
// inherits as fd 3 from Start.
type startResult struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	InitPID int    `json:"init_pid,omitempty"`
}
