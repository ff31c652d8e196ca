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
	// berthd __init-host, config over fd 3, the container's user namespace as fd 4
	helperInitHost = "__init-host"
	// what __init-host re-executes itself as; initns.c takes over before Go
	// starts, so reaching HelperMain with it is an error
	helperInitHostCopy = "__init-host-copy"
)

func init() {
	// The __init child joins a mount namespace, drops capabilities and
	// execs init; __init-host sets its fsuid: all per-thread state, so
	// every step must happen on one OS thread.
	// Locking in init() pins the main goroutine to the main thread before
	// main runs.
	if len(os.Args) > 1 && (os.Args[1] == helperInit || os.Args[1] == helperInitHost) {
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
	case helperMonitor, helperInit, helperInitHost, helperInitHostCopy:
		return true
	}

	return false
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
	case helperInitHost:
		return initHostMain()
	case helperInitHostCopy:
		fmt.Fprintf(os.Stderr, "%s: the initns constructor did not run\n", helperInitHostCopy)
		return 1
	}

	fmt.Fprintf(os.Stderr, "unknown helper %q\n", args[1])

	return 2
}
