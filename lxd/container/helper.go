package container

import (
	"fmt"
	"os"
	"runtime"

	"github.com/berth-dev/berth/lxd/container/monitorsig"
	"github.com/berth-dev/berth/lxd/setup"
)

// Hidden subcommands of the daemon binary (and of test binaries, which
// re-exec themselves the same way).
const (
	helperMonitor = "__monitor" // berthd __monitor [<RunDir>] (none: a spare)
	helperInit    = "__init"    // berthd __init, config over fd 3
	// berthd __mount-copier: lxd/nsexec/initns.c takes over before Go
	// starts (namespaces.go), so reaching HelperMain with it is an error
	helperMountCopier = "__mount-copier"
)

// monitorTerm receives the monitor's SIGTERM (monitor.go's termLoop).
var monitorTerm chan os.Signal

func init() {
	// A monitor's signals are taken by monitorsig, whose init runs earlier.
	monitorTerm = monitorsig.Term

	// The __init child joins a mount namespace, unshares its cgroup
	// namespace, drops capabilities and execs init: all per-thread state,
	// so every step must happen on one OS thread. Locking in init() pins the
	// main goroutine to the main thread before main runs.
	if len(os.Args) > 1 && os.Args[1] == helperInit {
		runtime.LockOSThread()
	}
}

// IsHelper reports whether args ask for one of the hidden subcommands. The
// daemon's main calls it before anything else.
func IsHelper(args []string) bool {
	if len(args) < 2 {
		return false
	}

	switch args[1] {
	case helperMonitor, helperInit, helperMountCopier:
		return true
	}

	return false
}

// HelperMain runs the hidden subcommand and returns the exit code.
func HelperMain(args []string) int {
	switch args[1] {
	case helperMonitor:
		switch len(args) {
		case 2:
			return monitorMain("") // a spare (spare.go)
		case 3:
			return monitorMain(args[2])
		}

		fmt.Fprintf(os.Stderr, "usage: %s %s [<rundir>]\n", args[0], helperMonitor)
		return 2
	case helperInit:
		return setup.InitMain()
	case helperMountCopier:
		fmt.Fprintf(os.Stderr, "%s: the initns constructor did not run\n", helperMountCopier)
		return 1
	}

	fmt.Fprintf(os.Stderr, "unknown helper %q\n", args[1])

	return 2
}
