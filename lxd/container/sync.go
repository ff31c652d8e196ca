package container

import "github.com/berth-dev/berth/lxd/setup"

// The monitor ↔ __init sync protocol: JSON messages on a socketpair the
// child inherits as fd 3. The child's end is close-on-exec, so the monitor
// sees EOF right after a successful exec of init.
//
//	monitor                                 __init (new user/mnt/pid/uts/ipc/net ns)
//	  ── config {version, setup.Config} ──▶
//	  ◀── ready-for-cgroup ───────────────
//	  cgroup AddProc(child), Delegate(root)
//	  ── cgroup-ready ───────────────────▶
//	                                        unshare(CLONE_NEWCGROUP): the ns root is now
//	                                        the container's cgroup; setup.Prepare
//	                                        (mounts, pivot_root, hostname, lo)
//	  ◀── execing ────────────────────────  (fds close-on-exec, caps dropped)
//	                                        execve(init) ─ socket closes
//	  EOF: init runs
//
// At any point the child may send {"type":"error"} and exit non-zero; EOF
// without execing means it died.
//
// The network step (ready-for-network: the monitor moves the veth peer in
// and names it host0) goes between cgroup-ready and execing when Berth
// gets networking.

type syncType string

const (
	syncConfig         syncType = "config"
	syncReadyForCgroup syncType = "ready-for-cgroup"
	syncCgroupReady    syncType = "cgroup-ready"
	syncExecing        syncType = "execing"
	syncError          syncType = "error"
)

// syncVersion guards against a monitor and child from different builds;
// both come from the same sealed binary, so a mismatch is a bug.
const syncVersion = 1

type syncMsg struct {
	Type    syncType      `json:"type"`
	Version int           `json:"version,omitempty"`
	Config  *setup.Config `json:"config,omitempty"`
	Error   string        `json:"error,omitempty"`
}
