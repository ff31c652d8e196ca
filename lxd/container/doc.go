// Package container runs one system container: systemd as PID 1 in new
// user, mount, pid, uts, ipc, net and cgroup namespaces, under a
// per-container monitor process that outlives the daemon.
//
// Processes, for a container "c1":
//
//	berthd ──exec──▶ berthd __monitor <RunDir>     (setsid; survives berthd)
//	                   ├─clone(NEWUSER,PID,NET,UTS,IPC)──▶ berthd __init ──exec──▶ /sbin/init (PID 1)
//	                   └─clone(NEWNS), from a thread in init's net and pid ns──▶
//	                        berthd __init-host (host root) ──exec──▶ initns.c; exits
//
// The daemon side is Start/Attach and the Monitor handle; it talks to the
// monitor over RunDir/monitor.sock (protocol.go). The monitor is init's
// parent: it reaps it, holds the console pty master and drains it into a
// ring buffer, and on init's exit records the Exit, removes the cgroups,
// unmounts Spec.Unmounts and exits. Both children talk to the monitor over
// socketpairs (sync.go): __init-host builds the mount tree as host root
// (lxd/setup) and copies it into the container's user namespace, which locks
// it (namespaces.go says why it takes two processes); __init joins that
// mount namespace, finishes the setup as the container's root and execs
// systemd. No Go of ours stays in the container.
//
// If the monitor itself dies (it should not: it ignores the daemon's
// signals and sessions), init is not killed: no parent-death signal is set,
// so the container keeps running, reparented to the host's init or
// subreaper. Attach then fails with ErrNotRunning, and Cleanup kills what is
// left through the container's cgroup and undoes the mounts.
package container
