// Package setup is the code that runs inside a new container's namespaces,
// between clone and the exec of the image's init: it builds the mount tree
// systemd expects (CONTAINER_INTERFACE.md), pivots into the root
// filesystem, names the host, and execs init with a trimmed bounding set.
//
// It runs in half-built namespaces, so it imports only the standard library,
// x/sys/unix and lxd/confine (the same: no state, nothing at init), keeps no
// globals and does no logging: every failure is returned to the caller,
// which reports it to the monitor.
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
	Mounts   []Mount  `json:"mounts"`    // extra binds, made after /proc and /sys
	Seccomp  []byte   `json:"seccomp"`   // compiled seccomp program (confine.Filter), loaded last; empty: none
}

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
