// Package monitorsig takes a container monitor's signals as early as Go allows. The
// monitor's C holder (lxd/nsexec/hold.c) execs back into Go with SIGTERM blocked, but
// the Go runtime unblocks it and installs its own handler before any package init runs:
// until signal.Notify, a SIGTERM kills the monitor (its container keeps running,
// orphaned). This package imports almost nothing, so its init runs before the daemon's
// heavy packages' (~13 ms of them), which shrinks that window to the runtime's own start.
package monitorsig

import (
	"os"
	"os/signal"
	"syscall"
)

// Term receives a monitor's SIGTERM; nil in every other process.
var Term chan os.Signal

// helperMonitor is lxd/container's argv[1] of a monitor.
const helperMonitor = "__monitor"

func init() {
	if len(os.Args) > 1 && os.Args[1] == helperMonitor {
		// The daemon's signals are not ours: a terminal hangup or Ctrl-C on a
		// foreground berthd must not stop containers. (Setsid already keeps us out
		// of its process group.)
		signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)

		Term = make(chan os.Signal, 1)
		signal.Notify(Term, syscall.SIGTERM)
	}
}
