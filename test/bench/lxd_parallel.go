package main

import (
	"context"
	"fmt"
	"sync"
)

// lxdParallelRuns caps the rounds of LXD's parallel figure: one round takes LXD tens of
// seconds on a 2-core machine, and the LXD section has its budget (lxdBudget).
const lxdParallelRuns = 3

// lxdParallel mirrors benchParallel for LXD: parallelLaunches `lxc launch` at once, the
// figure ending at the last systemd's own finish (boottime.go), the instances deleted
// after each round. Issue 12 names LXD's figure next to Berth's; taken in the same run it
// says what the machine of the day allows.
func lxdParallel(ctx context.Context, l *lxdDaemon, r *report) error {
	for i := 0; i < min(*runs, lxdParallelRuns); i++ {
		err := lxdParallelRun(ctx, l, r, i)
		if err != nil {
			return err
		}
	}

	return nil
}

func lxdParallelRun(ctx context.Context, l *lxdDaemon, r *report, run int) error {
	names := make([]string, parallelLaunches)
	for j := range names {
		names[j] = fmt.Sprintf("%sp%d-%d", l.prefix, run, j)
	}

	// Deleted at once, whatever happened: the next round starts on an empty daemon.
	defer func() {
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Go(func() { _, _ = l.lxc(context.WithoutCancel(ctx), "delete", "-f", n) })
		}

		wg.Wait()
	}()

	got, err := launchAtOnce(names,
		func(n string) error { return l.start(ctx, "launch", "debian12", n) },
		func(n string) (int, error) { return l.waitRunningPID(ctx, n) })
	if err != nil {
		return fmt.Errorf("LXD parallel launches: %w", err)
	}

	r.addAtOnce("LXD: ", got)
	return nil
}
