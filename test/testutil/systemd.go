package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// systemdBusLook is how often WaitSystemd looks for systemd's bus socket. A look is a
// stat through the container's root, 20 µs here; at 10 ms, 60 waits took 6 % of the host's
// CPU. The bus comes once systemd has loaded its units, long before the boot ends, and
// from then on systemctl's --wait blocks until the end: looking more often gains nothing.
const systemdBusLook = 50 * time.Millisecond

// systemdRetry is how long WaitSystemd waits before asking systemctl again when systemd's
// bus is not answering yet (its socket bound but not listening, or a loaded host).
const systemdRetry = 200 * time.Millisecond

// WaitSystemd waits until systemd, the init of a test's container (host pid), has finished
// booting, and returns what `systemctl is-system-running` says then: "running",
// "degraded", or what went wrong. It ends with an error when ctx does or init exits.
//
// It costs the boot it waits for next to nothing. Until systemd's private bus socket
// exists, it only stats the socket's path from the host, through /proc/<pid>/root (a stat
// of a test's own container, never an open). Then it runs one `systemctl
// is-system-running --wait` inside, which blocks until the boot ends. Asking systemctl
// from the start every 20 ms took three execs per look, and with 60 containers booting
// the looks took half of this 2-core host's CPU and doubled the boots they waited for.
func WaitSystemd(ctx context.Context, pid int) (string, error) {
	err := waitSystemdBus(ctx, pid)
	if err != nil {
		return "", err
	}

	for {
		// -r -w: systemctl runs in the container's root (which is not its mount
		// namespace's for a chroot, the bench's floor) and finds its bus there. timeout
		// ends systemctl within ctx's deadline; WaitDelay ends the wait for its output
		// should nsenter be killed first (its child in the pid namespace outlives it).
		cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "--",
			"timeout", strconv.Itoa(waitSeconds(ctx)), "systemctl", "is-system-running", "--wait")
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
		cmd.WaitDelay = time.Second
		b, runErr := cmd.CombinedOutput()
		out := strings.TrimSpace(string(b))
		if runErr != nil && !Running(pid) {
			return out, fmt.Errorf("init (pid %d) exited while systemd booted: %s", pid, out)
		}

		if !systemdBooting(out) {
			return out, nil
		}

		select {
		case <-ctx.Done():
			return out, fmt.Errorf("systemd of pid %d still booting (systemctl says %q): %w", pid, out, ctx.Err())
		case <-time.After(systemdRetry):
		}
	}
}

// waitSeconds is how long one systemctl --wait may take: 60 s, or less when ctx's
// deadline comes sooner (at least a second).
func waitSeconds(ctx context.Context) int {
	s := 60
	if d, ok := ctx.Deadline(); ok {
		s = min(s, max(1, int(time.Until(d).Seconds())))
	}

	return s
}

// systemdBooting says whether systemctl's answer means systemd is still starting:
// nothing said (timeout ended the wait), no bus yet, /run/systemd/system not made yet,
// or the bus call timed out on a loaded host.
func systemdBooting(out string) bool {
	return out == "" || out == "offline" || strings.Contains(out, "Failed to connect to bus") ||
		strings.Contains(out, "Connection timed out")
}

// waitSystemdBus waits for the socket of systemd's private bus (the one systemctl uses as
// root) in the container of pid.
func waitSystemdBus(ctx context.Context, pid int) error {
	bus := "/proc/" + strconv.Itoa(pid) + "/root/run/systemd/private"
	tick := time.NewTicker(systemdBusLook)
	defer tick.Stop()
	for {
		_, err := os.Stat(bus)
		if err == nil {
			return nil
		}

		if !Running(pid) {
			return fmt.Errorf("init (pid %d) exited before systemd's bus came up", pid)
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("systemd of pid %d has no bus yet: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}
