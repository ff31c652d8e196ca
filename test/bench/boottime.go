package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A container's boot is timed against systemd's own record of it. systemd stamps when it
// started (UserspaceTimestampMonotonic) and when the boot finished
// (FinishTimestampMonotonic: the job queue ran empty, the moment `systemctl
// is-system-running` turns "running"); `systemd-analyze` prints the difference as
// "Startup finished in ... (userspace)". Containers share the host's CLOCK_MONOTONIC
// (Berth makes no time namespace), so the finish also ends the host-side figures exactly,
// without the latency of the bench's own polling (an nsenter and a systemctl per look).

// monotonic is the host's CLOCK_MONOTONIC.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// boot is one boot of systemd on the monotonic clock.
type boot struct {
	userspace time.Duration // systemd started
	finish    time.Duration // systemd reached "running" (or "degraded")
}

// analyze is what systemd-analyze reports as the userspace boot time.
func (b boot) analyze() time.Duration { return b.finish - b.userspace }

// bootOf reads the boot of systemd in the namespaces of pid, once it has finished.
func bootOf(pid int) (boot, error) {
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "--",
		"systemctl", "show", "--property=UserspaceTimestampMonotonic,FinishTimestampMonotonic")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return boot{}, fmt.Errorf("reading systemd's boot times: %w: %s", err, trim(string(out)))
	}

	var b boot
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}

		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}

		switch k {
		case "UserspaceTimestampMonotonic":
			b.userspace = time.Duration(us) * time.Microsecond
		case "FinishTimestampMonotonic":
			b.finish = time.Duration(us) * time.Microsecond
		}
	}

	if b.userspace == 0 || b.finish < b.userspace {
		return boot{}, fmt.Errorf("systemd has not finished booting: %s", trim(string(out)))
	}

	return b, nil
}

// addBoot records a boot that began (berth launch or start invoked) at t0 on the
// monotonic clock: t0 -> running by systemd's finish, systemd's own userspace boot
// time in the same container, and their ratio, the start overhead.
func (r *report) addBoot(what string, t0 time.Duration, b boot) {
	total := b.finish - t0
	r.add(what+" -> systemd starts", b.userspace-t0)
	r.add(what+" -> running (systemd's finish)", total)
	r.add(what+": systemd userspace boot (systemd-analyze)", b.analyze())
	r.addRatio(what+" -> running / systemd userspace boot", float64(total)/float64(b.analyze()))
}
