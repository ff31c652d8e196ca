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
//	  Delegate(root) (begun before the      CloneMounts (devices, from its
//	  config); the host side                copy of the host's mount namespace)
//	  (buildMountNS, below) mounts the
//	  procfs and builds the tree
//	  ── mount-ns + fd ──────────────────▶ (only once init is in its cgroups)
//	                                        unshare(CLONE_NEWCGROUP): the ns root
//	                                        is the container's cgroup;
//	                                        setns(fd): the locked tree, root = rootfs;
//	                                        PrepareContainer (devpts, cgroup2,
//	                                        devices, hostname, lo)
//	  ◀── execing ────────────────────────  (fds close-on-exec, caps dropped)
//	                                        execve(systemd) ─ socket closes
//	  EOF: init runs
//
// Each side sends as soon as it can and no message waits for an answer: a handover
// between the two processes costs 0.5-1.5 ms on a paravirtualised VM, and init asking
// for its cgroups, then for its mount namespace, cost two (version 3). Init reads
// mount-ns with one recvmsg (RecvFD), and nothing else comes from the monitor after the
// config but an error, so no json.Decoder of init ever reads ahead into the fd's
// message.
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
	SyncProcContext   SyncType = "proc-context"
	SyncConfig        SyncType = "config"
	SyncMountNS       SyncType = "mount-ns"
	SyncCopierStarted SyncType = "copier-started" // spelt out in initns.c
	SyncCopyMountNS   SyncType = "copy-mount-ns"  // spelt out in initns.c
	SyncMountNSReady  SyncType = "mount-ns-ready" // spelt out in initns.c
	SyncExecing       SyncType = "execing"
	SyncError         SyncType = "error"
)

// SyncVersion guards against a monitor and an init of different builds: the monitor
// runs berthd's sealed binary, init the berth-init built into it (or the same binary),
// so a mismatch is a build gone wrong (lxd/container.CheckInitExe logs one at start).
// 2: the mount tree built by the monitor and handed to init. 3: proc-context first.
// 4: no ready-for-cgroup, cgroup-ready or ready-for-mount-ns (mount-ns says the
// cgroups are ready).
const SyncVersion = 4

type SyncMsg struct {
	Type    SyncType `json:"type"`
	Version int      `json:"version,omitempty"`
	Config  *Config  `json:"config,omitempty"`
	Error   string   `json:"error,omitempty"`
}
