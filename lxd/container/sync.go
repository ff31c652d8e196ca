package container

import "github.com/berth-dev/berth/lxd/setup"

// The sync protocols of one start (namespaces.go says why two children):
// JSON lines on socketpairs the children inherit as fd 3. Two messages carry
// an fd (sync_fd.go).
//
// The monitor and __init (cloned into new user, mount, pid, uts, ipc and net
// namespaces; the container's root). Its end of the socket is close-on-exec,
// so the monitor sees EOF right after a successful exec of systemd.
//
//	monitor                                 __init
//	  ── config {version, setup.Config} ──▶ (lxd/nsexec/initproc.c, before Go:)
//	                                        fsopen("proc"): a procfs context of
//	                                        the container's pid namespace
//	  ◀── proc-context + procfs fd ────────
//	  cgroups made, AddProc(init),          (its Go runtime starts meanwhile)
//	  Delegate(root); buildMountNS (below)
//	  mounts the procfs                     setup.CloneMounts (devices, from its
//	                                        copy of the host's mount namespace)
//	  ◀── ready-for-cgroup ────────────────
//	  ── cgroup-ready ───────────────────▶
//	                                        unshare(CLONE_NEWCGROUP): the ns root
//	                                        is now the container's cgroup
//	  ◀── ready-for-mount-ns ─────────────
//	  ── mount-ns + fd ──────────────────▶
//	                                        setns(fd): the locked tree, root = rootfs;
//	                                        setup.PrepareContainer (devpts, cgroup2,
//	                                        devices, hostname, lo)
//	  ◀── execing ────────────────────────  (fds close-on-exec, caps dropped)
//	                                        execve(systemd) ─ socket closes
//	  EOF: init runs
//
// The monitor and __mount-copier (host root; started from the monitor's
// thread that builds the tree, in its mount namespace; lxd/nsexec/initns.c,
// no Go):
//
//	monitor thread (host root, own mount ns)  __mount-copier
//	  start the copier ───────────────────▶   its libraries loaded
//	  ◀── copier-started ──────────────────   waits
//	  setup.PrepareHost: /dev, /sys, /run,
//	  /tmp, /proc and its masks, lxcfs,
//	  pivot_root
//	  ── copy-mount-ns ───────────────────▶
//	                                          setns(user ns), unshare(CLONE_NEWNS):
//	                                          the locked copy
//	  ◀── mount-ns-ready ──────────────────
//	  open /proc/<pid>/ns/mnt, close ─────▶   exits
//
// At any point a child may send {"type":"error"} and exit non-zero (the C
// constructor too); EOF before the expected message means it died.

type syncType string

const (
	syncProcContext     syncType = "proc-context" // spelt out in initproc.c
	syncConfig          syncType = "config"
	syncReadyForCgroup  syncType = "ready-for-cgroup"
	syncCgroupReady     syncType = "cgroup-ready"
	syncReadyForMountNS syncType = "ready-for-mount-ns"
	syncMountNS         syncType = "mount-ns"
	syncCopierStarted   syncType = "copier-started" // spelt out in initns.c
	syncCopyMountNS     syncType = "copy-mount-ns"  // spelt out in initns.c
	syncMountNSReady    syncType = "mount-ns-ready" // spelt out in initns.c
	syncExecing         syncType = "execing"
	syncError           syncType = "error"
)

// syncVersion guards against a monitor and child from different builds;
// both come from the same sealed binary, so a mismatch is a bug.
// 2: the mount tree built by the monitor and handed to init.
const syncVersion = 3

type syncMsg struct {
	Type    syncType      `json:"type"`
	Version int           `json:"version,omitempty"`
	Config  *setup.Config `json:"config,omitempty"`
	Error   string        `json:"error,omitempty"`
}
