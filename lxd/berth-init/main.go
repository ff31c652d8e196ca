// berth-init is a container's init until it execs systemd (setup.InitMain), forked by
// berth-init as its init maker, and the mount namespace copier of its start (both
// lxd/nsexec/initns, whose C constructors take over before main when their variable is
// set). The monitor execs it from a sealed copy of the
// bytes built into berthd (lxd/container/initexe.go). It is small and static: exec'ing
// the whole daemon binary for these two cost ~3 ms more each on the development VM (its
// 29 MB, its shared libraries, 160 package initialisers), on the path from the command
// to systemd.
package main

import (
	"os"
	"runtime"

	_ "github.com/berth-dev/berth/lxd/nsexec/initns" // the copier's and the init maker's constructors
	"github.com/berth-dev/berth/lxd/setup"
)

// Init joins a mount namespace, unshares its cgroup namespace, drops capabilities and
// execs systemd: per-thread state, so all of it happens on the main OS thread, locked
// before main runs.
func init() { runtime.LockOSThread() }

func main() { os.Exit(setup.InitMain()) }
