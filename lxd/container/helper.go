package container

import (
	"fmt"
	"os"
	"runtime"
)

// Hidden subcommands of the daemon binary (and of test binaries, which
// re-exec themselves the same way).
const (
	helperMonitor = "__monitor" // berthd __monitor <RunDir>
	helperInit    = "__init"    // berthd __init, config over fd 3
)

func init() {
	// The __init child unshares its cgroup namespace, drops capabilities
	// and execs init: all per-thread state, so every step must happen on
	// one OS thread. Locking in init() pins the main goroutine to the main
	// thread before main runs.
	if len(os.Args) > 1 && os.Args[1] == helperInit {
		runtime.LockOSThread()
	}
}

// IsHelper reports whether args ask for one of the hidden subcommands. The
// daemon's main calls it before anything else.
func IsHelper(args []string) bool {
	return len(args) > 1 && (args[1] == helperMonitor || args[1] == helperInit)
}

// HelperMain runs the hidden subcommand and returns the exit code.
func HelperMain(args []string) int {
	switch args[1] {
	case helperMonitor:
		if len(args) != 3 {
			fmt.Fprintf(os.Stderr, "usage: %s %s <rundir>\n", args[0], helperMonitor)
			return 2
		}

		return monitorMain(args[2])
	case helperInit:
		return initMain()
	}

	fmt.Fprintf(os.Stderr, "unknown helper %q\n", args[1])

	return 2
}
