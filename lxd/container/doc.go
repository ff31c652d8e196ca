// Package container runs one system container: systemd as PID 1 in new
// user, mount, pid, uts, ipc, net and cgroup namespaces, under a
// per-container monitor process that outlives the daemon.
//
// Processes, for a container "c1":
//
//	berthd ──exec──▶ berthd __monitor [<RunDir>]   (setsid; survives berthd; without
//	                   │                             RunDir a spare, started ahead of
//	                   │                             the next start: spare.go)
//	                   ├─clone(NEW*)──▶ berth-init ──exec──▶ /sbin/init (PID 1)
//	                   └─from a thread with its own mount ns──▶ berth-init as copier
//	                                                            (C only; exits)
//	(berth-init: a small binary built into berthd, initexe.go; without it berthd
//	__init and berthd __mount-copier)
//
//	one process, the monitor, over time (hold.go):
//	  Go: start ─▶ idle 1 s ──execve──▶ C holder (lxd/nsexec/hold.c) ──stop, freeze,
//	  stats, set-mounts, init exited, SIGTERM──execve──▶ Go (resume.go) ─▶ idle ─▶ …
//
// The daemon side is Start/Attach and the Monitor handle; it talks to the
// monitor over RunDir/monitor.sock (protocol.go). The monitor is init's
// parent: it reaps it, holds the console pty master and drains it into a
// ring buffer (in a memfd, handoff.go), and on init's exit records the Exit,
// removes the cgroups, unmounts Spec.Unmounts and exits. It builds init's
// mount tree as host root on one of its threads (lxd/setup) and has the
// copier copy it into the container's user namespace, which locks it
// (namespaces.go); init (setup.InitMain) joins that mount namespace, finishes
// the setup as the container's root and execs systemd, talking to the monitor
// over a socketpair (lxd/setup/sync.go). No Go of ours stays in the container.
//
// An idle container's monitor is the holder: the same process re-executed
// as C code that never starts the Go runtime (~110 kB private memory instead
// of ~2.3 MB). It drains the console, answers state, watch, console-log and
// the console's attach, resize and clear on the same socket with the same
// bytes, and execs back into Go, handing over every fd and connection, for
// anything else.
//
// If the monitor itself dies (it should not: it ignores the daemon's
// signals and sessions), init is not killed: no parent-death signal is set,
// so the container keeps running, reparented to the host's init or
// subreaper. Attach then fails with ErrNotRunning, and Cleanup kills what is
// left through the container's cgroup and undoes the mounts.
package container
