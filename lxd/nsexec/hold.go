package nsexec

// The monitor's holder (hold.c): lxd/container execs the monitor's own binary
// with EnvMonitorHold naming its shared memfd, and the constructor in hold.c
// runs the idle monitor in C; it execs back with EnvMonitorResume to hand the
// monitor to Go again. Importing this package links the constructor into
// every binary that starts containers.
const (
	EnvMonitorHold   = "_BERTH_MONITOR_HOLD"
	EnvMonitorResume = "_BERTH_MONITOR_RESUME"
)
