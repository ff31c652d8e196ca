package setup

// The sync protocols of one start (lxd/container/namespaces.go says why two
// children): JSON lines on socketpairs the children inherit as fd 3. Two
// messages carry an fd (sync_fd.go).
//
// The monitor and init (InitMain: the berth-init binary, or berthd __init;
// cloned into new user, mount, pid, uts, ipc and net namespaces; the
// container's root). Its end of the socket is close-on-exec, so the monitor
// sees EOF right after a successful exec of systemd.
//
//	monitor                                 init
//	  ── config {version, Config} ────────▶ fsopen("proc"), first: a procfs
//	                                        context of the container's pid
//	  ◀── proc-context + procfs fd ──────── namespace
//	  cgroups made, AddProc(init),
//	  Delegate(root); the host side         CloneMounts (devices, from its
//	  (buildMountNS, below) mounts the      copy of the host's mount namespace)
//	  procfs and builds the tree
//	  ◀── ready-for-cgroup ────────────────
//	  ── cgroup-ready ───────────────────▶
//	                                        unshare(CLONE_NEWCGROUP): the ns root
//	                                        is now the container's cgroup
//	  ◀── ready-for-mount-ns ─────────────
//	  ── mount-ns + fd ──────────────────▶
//	                                        setns(fd): the locked tree, root = rootfs;
//	                                        PrepareContainer (devpts, cgroup2,
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

type SyncType string

const (
	SyncProcContext     SyncType = "proc-context"
	SyncConfig          SyncType = "config"
	SyncReadyForCgroup  SyncType = "ready-for-cgroup"
	SyncCgroupReady     SyncType = "cgroup-ready"
	SyncReadyForMountNS SyncType = "ready-for-mount-ns"
	SyncMountNS         SyncType = "mount-ns"
	SyncCopierStarted   SyncType = "copier-started" // spelt out in initns.c
	SyncCopyMountNS     SyncType = "copy-mount-ns"  // spelt out in initns.c
	SyncMountNSReady    SyncType = "mount-ns-ready" // spelt out in initns.c
	SyncExecing         SyncType = "execing"
	SyncError           SyncType = "error"
)

// SyncVersion guards against a monitor and an init of different builds: the monitor
// runs berthd's sealed binary, init the berth-init built into it (or the same binary),
// so a mismatch is a build gone wrong (lxd/container.CheckInitExe logs one at start).
// 2: the mount tree built by the monitor and handed to init. 3: proc-context first.
const SyncVersion = 3

type SyncMsg struct {
	Type    SyncType `json:"type"`
	Version int      `json:"version,omitempty"`
	Config  *Config  `json:"config,omitempty"`
	Error   string   `json:"error,omitempty"`
}
