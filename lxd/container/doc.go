// Package container runs one system container: systemd as PID 1 in new
// user, mount, pid, uts, ipc, net and cgroup namespaces, under a
// per-container monitor process that outlives the daemon.
//
// Processes, for a container "c1":
//
//	berthd ──exec──▶ berthd __monitor <RunDir>     (setsid; survives berthd)
//	                   ├─clone(NEWUSER,NET,UTS,IPC; unshare NEWPID)──▶ holder (killed at once)
//	                   └─clone(NEWNS) from a thread in the holder's namespaces──▶
//	                        berthd __init ──exec──▶ berthd __init-userns ──exec──▶ /sbin/init
//	                        (PID 1 throughout)
//
// The daemon side is Start/Attach and the Monitor handle; it talks to the
// monitor over RunDir/monitor.sock (protocol.go). The monitor is init's
// parent: it reaps it, holds the console pty master and drains it into a
// ring buffer, and on init's exit records the Exit, removes the cgroups,
// unmounts Spec.Unmounts and exits. The __init child talks to the monitor
// over a socketpair (sync.go): as host root it builds the mount tree
// (lxd/setup), then re-executes itself into the container's user namespace,
// which locks that tree (namespaces.go says why it takes these steps), and
// execs init; no Go of ours stays in the container.
//
// If the monitor itself dies (it should not: it ignores the daemon's
// signals and sessions), init is not killed: no parent-death signal is set,
// so the container keeps running, reparented to the host's init or
// subreaper. Attach then fails with ErrNotRunning, and Cleanup kills what is
// left through the container's cgroup and undoes the mounts.
package container
