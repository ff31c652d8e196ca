package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// lxdBudget bounds the LXD measurements (under 2 minutes on a 2-core machine, half of
// it the parallel launches); cleanup has its own two minutes on top.
const lxdBudget = 5 * time.Minute

// benchLXD measures the real LXD (Debian's lxd package, dir storage driver) the way the
// Berth figures are measured, and adds its rows as "LXD: …" next to Berth's. The
// comparison is optional: any failure becomes a note, never an error of the bench.
//
// Call it after the Berth measurements: it stops Berth's running instances first, so LXD
// runs on a machine as quiet as Berth had.
func benchLXD(b *berthd, image string, r *report) {
	_, err := exec.LookPath("lxd")
	if err != nil {
		r.note("LXD not installed: comparison skipped (apt-get install lxd)")
		return
	}

	quietBerth(b)
	ctx, cancel := context.WithTimeout(context.Background(), lxdBudget)
	defer cancel()

	// Ctrl-C or SIGTERM cut the measurements short but still clean up: the daemon, in its
	// own session, outlives the interrupted lxc commands.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "LXD: starting a private daemon (%s pool, no network)\n", lxdPool)
	l, err := startLXD(ctx, image)
	if err != nil {
		r.note("LXD: comparison skipped: %v", err)
		return
	}

	defer func() {
		for _, p := range l.close() {
			r.note("LXD cleanup: %s", p)
		}
	}()

	t0 := time.Now()
	err = lxdMeasure(ctx, l, r)
	if err != nil {
		r.note("LXD: measurements stopped early: %v", err)
	}

	r.note("LXD: measured in %s", time.Since(t0).Round(time.Second))

	placeLXDRows(r)
}

// quietBerth stops Berth's running instances so they do not compete with LXD.
func quietBerth(b *berthd) {
	out, _ := b.berth("list", "--format", "csv", "-c", "ns")
	for _, line := range strings.Split(trim(out), "\n") {
		name, state, ok := strings.Cut(line, ",")
		if ok && state == "RUNNING" {
			_, _ = b.berth("stop", "-f", name)
		}
	}
}

func lxdMeasure(ctx context.Context, l *lxdDaemon, r *report) error {
	// First, on a daemon with nothing running, as Berth's parallel figure is taken.
	fmt.Fprintln(os.Stderr, "LXD: parallel launches")
	err := lxdParallel(ctx, l, r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "LXD: lifecycle")
	names, err := lxdLifecycle(ctx, l, r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "LXD: list and exec")
	names, err = lxdList(ctx, l, r, names)
	if err != nil {
		return err
	}

	err = lxdExec(ctx, l, r, names[0])
	if err != nil {
		return err
	}

	// The storage figures get the machine to themselves: one instance left.
	for _, n := range names[1:] {
		_, err := l.lxc(ctx, "delete", "-f", n)
		if err != nil {
			return err
		}
	}

	fmt.Fprintln(os.Stderr, "LXD: snapshot, restore, copy")
	return lxdStorage(ctx, l, r, names[0])
}

// lxdLifecycle mirrors benchLifecycle: launch → running, clean stop, start → running.
// "Running" is systemd's answer inside, asked through nsenter as for Berth.
func lxdLifecycle(ctx context.Context, l *lxdDaemon, r *report) ([]string, error) {
	names := []string{}
	for i := 0; i < *runs; i++ {
		name := fmt.Sprintf("%s%d", l.prefix, i)
		t0, m0 := time.Now(), monotonic()
		err := l.start(ctx, "launch", "debian12", name)
		if err != nil {
			return names, err
		}

		r.add("LXD: lxc launch (command returns)", time.Since(t0))
		names = append(names, name)
		pid, err := l.waitRunningPID(ctx, name)
		if err != nil {
			return names, err
		}

		r.add("LXD: launch -> is-system-running=running", time.Since(t0))
		err = l.addBoot(r, "launch", m0, pid)
		if err != nil {
			return names, err
		}
	}

	r.note("LXD: PSS with %d containers running: lxd %s, liblxc monitors %s", len(names), pss(l.Pid()), l.monitorsPSS())

	for _, name := range names {
		t0 := time.Now()
		_, err := l.lxc(ctx, "stop", name)
		if err != nil {
			return names, err
		}

		r.add("LXD: lxc stop (clean)", time.Since(t0))
	}

	for _, name := range names {
		t0, m0 := time.Now(), monotonic()
		err := l.start(ctx, "start", name)
		if err != nil {
			return names, err
		}

		pid, err := l.waitRunningPID(ctx, name)
		if err != nil {
			return names, err
		}

		r.add("LXD: start -> is-system-running=running", time.Since(t0))
		err = l.addBoot(r, "start", m0, pid)
		if err != nil {
			return names, err
		}
	}

	return names, nil
}

// waitRunning reads the init pid from LXD and waits for systemd through nsenter, as the
// Berth figures do.
func (l *lxdDaemon) waitRunning(ctx context.Context, name string) error {
	_, err := l.waitRunningPID(ctx, name)
	return err
}

// waitRunningPID is waitRunning returning the init pid.
func (l *lxdDaemon) waitRunningPID(ctx context.Context, name string) (int, error) {
	pid, err := l.initPID(ctx, name)
	if err != nil {
		return 0, err
	}

	err = waitRunningCtx(ctx, pid)
	if err != nil {
		return 0, fmt.Errorf("LXD instance %s: %w", name, err)
	}

	return pid, nil
}

// addBoot records systemd's own record of a boot in an LXD instance next to the command
// that began it at m0, as addBoot does for Berth: the same ratio, taken the same way.
func (l *lxdDaemon) addBoot(r *report, what string, m0 time.Duration, pid int) error {
	b, err := bootOf(pid)
	if err != nil {
		return fmt.Errorf("LXD instance of pid %d: %w", pid, err)
	}

	r.addBoot("LXD: "+what, m0, b)
	return nil
}

// lxdList launches instances up to 10 running and, once they have booted, times `lxc list`
// (default columns).
func lxdList(ctx context.Context, l *lxdDaemon, r *report, names []string) ([]string, error) {
	for i := len(names); i < 10; i++ {
		name := fmt.Sprintf("%s%d", l.prefix, i)
		err := l.start(ctx, "launch", "debian12", name)
		if err != nil {
			return names, err
		}

		names = append(names, name)
	}

	// At rest, as Berth's list is timed (list.go).
	for _, name := range names {
		err := l.waitRunning(ctx, name)
		if err != nil {
			return names, err
		}
	}

	for i := 0; i < *runs; i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "list")
		if err != nil {
			return names, err
		}

		r.add(fmt.Sprintf("LXD: lxc list, %d instances (%d running)", len(names), len(names)), time.Since(t0))
	}

	return names, nil
}

// lxdExec times the round trip of `lxc exec c -- true`, 10 times -runs samples.
func lxdExec(ctx context.Context, l *lxdDaemon, r *report, name string) error {
	for i := 0; i < 10**runs; i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "exec", name, "--", "true")
		if err != nil {
			return err
		}

		r.add("LXD: lxc exec NAME -- true", time.Since(t0))
	}

	return nil
}

// monitorsPSS lists the PSS of each of our liblxc monitors.
func (l *lxdDaemon) monitorsPSS() string {
	out := []string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.HasPrefix(string(cmdline), "[lxc monitor] "+l.dir+"/") {
			var pid int
			_, err := fmt.Sscan(e.Name(), &pid)
			if err == nil {
				out = append(out, pss(pid))
			}
		}
	}

	return strings.Join(out, ", ")
}
