// Package setup is the code that runs inside a new container's namespaces,
// between clone and the exec of the image's init: it builds the mount tree
// systemd expects (CONTAINER_INTERFACE.md), pivots into the root
// filesystem, names the host, and execs init with a trimmed bounding set.
//
// It runs in two places. PrepareHost, as host root on a thread of the
// container's monitor, in a mount namespace of that thread owned by the
// initial user namespace, builds everything the container must not undo
// (masks, read-only binds, device nodes, the console, /run, /tmp, lxcfs's
// views) and pivots; that mount namespace is then copied from inside the
// container's user namespace, which locks all of those mounts
// (lxd/container/namespaces.go, lxd/nsexec/initns/initns.c). The container's init
// joins the copy and, as the container's root, PrepareContainer adds what
// the container owns (its cgroup2 tree and devpts instance) and the devices
// (CloneMounts), the hostname and loopback, and Exec starts systemd.
//
// It runs in half-built namespaces, so it imports only the standard library,
// x/sys/unix and lxd/confine (the same: no state, nothing at init), keeps no globals and does no logging: every failure is
// returned to the caller, which reports it to the monitor.
package setup

import "golang.org/x/sys/unix"

// Config is everything the child needs, sent as JSON by the monitor.
type Config struct {
	Rootfs   string   `json:"rootfs"`    // host path of the container's root (already mounted)
	Hostname string   `json:"hostname"`  // UTS name
	Console  string   `json:"console"`   // host path of the console pty slave (/dev/pts/N), bound on /dev/console
	Env      []string `json:"env"`       // the complete environment of init
	Init     []string `json:"init"`      // candidate init paths inside the rootfs, tried in order
	DropCaps []int    `json:"drop_caps"` // capabilities removed from the bounding set
	Mounts   []Mount  `json:"mounts"`    // extra binds, made last (CloneMounts)
	Seccomp  []byte   `json:"seccomp"`   // compiled seccomp program (confine.Filter), loaded last; empty: none

	// RootUID and RootGID are the host ids of the container's root: the owner of what the
	// host-side stage (PrepareHost) creates: the /dev tmpfs, /run, /tmp, mount points.
	RootUID uint32 `json:"root_uid"`
	RootGID uint32 `json:"root_gid"`

	// MemoryLimit is the container's memory limit in bytes (0: none); it bounds the sizes
	// of /dev/shm, /run and /tmp.
	MemoryLimit int64 `json:"memory_limit,omitempty"`

	// PtyMax is the devpts instance's max= (0: DefaultPtyMax).
	PtyMax int `json:"pty_max,omitempty"`
}

// DefaultPtyMax bounds the ptys of one container, as LXD does (its lxc.pty.max). The host
// keeps its own ptys whatever a container does: the kernel reserves kernel.pty.reserve of
// kernel.pty.max for the host's devpts.
const DefaultPtyMax = 1024

// DefaultInit lists where images keep systemd, in nspawn's order reversed to
// honour an image's choice of /sbin/init first.
var DefaultInit = []string{"/sbin/init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd"}

// DefaultDropCaps is LXD's default drop list. CAP_SYS_RAWIO matters most:
// without it systemd skips sys-kernel-debug.mount and
// sys-kernel-tracing.mount (ConditionCapability=CAP_SYS_RAWIO), which
// otherwise fail in a user namespace and leave the system "degraded".
// The others are meaningless in a user namespace, and dropping CAP_SYS_TIME
// also makes time-sync units skip themselves.
var DefaultDropCaps = []int{unix.CAP_SYS_RAWIO, unix.CAP_SYS_MODULE, unix.CAP_SYS_TIME, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE}
