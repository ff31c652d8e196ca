package container

import "github.com/berth-dev/berth/lxd/setup"

// The sync protocols of one start (namespaces.go says why there are two
// processes): JSON messages on socketpairs the children inherit as fd 3.
//
// The monitor and __init (the container's PID 1, cloned into new user, pid,
// uts, ipc and net namespaces). Its end of the socket is close-on-exec, so
// the monitor sees EOF right after a successful exec of systemd.
//
//	monitor                                __init (container root)
//	  ── config {version, setup.Config} ──▶
//	  ◀── ready-for-cgroup ───────────────
//	  cgroup AddProc(init), Delegate(root)
//	  ── cgroup-ready ───────────────────▶
//	                                       unshare(CLONE_NEWCGROUP): the ns root is
//	                                       now the container's cgroup
//	  ◀── ready-for-mount-ns ─────────────
//	  (the host side's mount-ns-ready, below)
//	  ── mount-ns + fd (SCM_RIGHTS) ─────▶
//	                                       setns(fd): the locked tree, root = the rootfs;
//	                                       setup.PrepareContainer (devpts, cgroup2,
//	                                       hostname, lo)
//	  ◀── execing ────────────────────────  (fds close-on-exec, caps dropped)
//	                                       execve(systemd) ─ socket closes
//	  EOF: init runs
//
// The monitor and __init-host (host root; PID 2 of the container's pid ns,
// its net ns, a new mount ns owned by the host; started as soon as init
// exists, it works while init starts up):
//
//	monitor                                __init-host
//	  ── config {version, setup.Config} ──▶
//	                                       setup.PrepareHost: /dev, /proc and its
//	                                       masks, /sys, /run, /tmp, extra binds, pivot_root;
//	                                       execve(self) with the container's user ns as
//	                                       fd 4: lxd/nsexec/initns.c joins it and
//	                                       unshares CLONE_NEWNS (the locked copy)
//	  ◀── mount-ns-ready ─────────────────  (from C)
//	  open /proc/<pid>/ns/mnt, close ─────▶ exits
//
// At any point a child may send {"type":"error"} and exit non-zero (the C
// constructor too); EOF before the expected message means it died.

type syncType string

const (
	syncConfig          syncType = "config"
	syncReadyForCgroup  syncType = "ready-for-cgroup"
	syncCgroupReady     syncType = "cgroup-ready"
	syncReadyForMountNS syncType = "ready-for-mount-ns"
	syncMountNS         syncType = "mount-ns"
	syncMountNSReady    syncType = "mount-ns-ready" // spelt out in initns.c
	syncExecing         syncType = "execing"
	syncError           syncType = "error"
)

// syncVersion guards against a monitor and child from different builds;
// both come from the same sealed binary, so a mismatch is a bug.
// 2: the host side and the mount namespace handed to init.
const syncVersion = 2

type syncMsg struct {
	Type    syncType      `json:"type"`
	Version int           `json:"version,omitempty"`
	Config  *setup.Config `json:"config,omitempty"`
	Error   string        `json:"error,omitempty"`
}
