package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/shared/atomicfile"
	"golang.org/x/sys/unix"
)

// LastExit reads how init last ended, as the monitor recorded it. While a
// container runs there is no record (Start removes the previous one), and
// the error wraps fs.ErrNotExist.
func LastExit(runDir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(runDir, exitFile))
	if err != nil {
		return nil, fmt.Errorf("reading exit record: %w", err)
	}

	var e Exit

	err = json.Unmarshal(b, &e)
	if err != nil {
		return nil, fmt.Errorf("parsing exit record %q: %w", filepath.Join(runDir, exitFile), err)
	}

	return &e, nil
}

// HostShutdown says whether the container went down because the host was shutting down
// (its monitor's own SIGTERM began the stop) and not at the daemon's request, which wins
// when both crossed: such a container is still meant to run. A nil e says nothing.
func (e *Exit) HostShutdown() bool {
	return e != nil && e.Term && !e.Requested
}

// exitFromStatus classifies init's wait status. In a pid namespace,
// reboot(2) from its init does not reboot the host: the kernel kills init
// with SIGHUP for a restart and SIGINT for power-off or halt.
func exitFromStatus(ws syscall.WaitStatus, killed bool) Exit {
	e := Exit{At: time.Now().UTC(), Killed: killed}

	switch {
	case ws.Signaled():
		e.Signal = int(ws.Signal())

		switch {
		case ws.Signal() == unix.SIGHUP:
			e.Reboot = true
			e.Reason = "reboot"
		case ws.Signal() == unix.SIGINT:
			e.Reason = "poweroff"
		case killed:
			e.Reason = "killed"
		default:
			e.Reason = "signal"
		}
	default:
		e.Code = ws.ExitStatus()
		e.Reason = "exit"
	}

	return e
}

func writeExit(runDir string, e Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding exit record: %w", err)
	}

	return atomicfile.Write(filepath.Join(runDir, exitFile), b, 0o600)
}
