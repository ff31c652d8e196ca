package testutil

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/lxcfs"
)

// The daemons of a test or bench run start one lxcfs for the host (it outlives berthd by
// design: containers keep using it). The run stops the one it started, by the pid in its
// pid file, and leaves alone one that was running before.

const lxcfsPidFile = lxcfs.DefaultDir + ".pid"

// LxcfsPid is the live lxcfs of the pid file, 0 when none runs.
func LxcfsPid() int {
	data, err := os.ReadFile(lxcfsPidFile)
	if err != nil {
		return 0
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0
	}

	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "lxcfs" {
		return 0
	}

	return pid
}

// StopLxcfsStartedSince stops the lxcfs running now if it is not before (the one that
// was running when the run began).
func StopLxcfsStartedSince(before int) {
	pid := LxcfsPid()
	if pid == 0 || pid == before {
		return
	}

	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 50 && LxcfsPid() == pid; i++ {
		time.Sleep(100 * time.Millisecond)
	}

	_ = unix.Unmount(lxcfs.DefaultDir, unix.MNT_DETACH)
}
