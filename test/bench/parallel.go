package main

import (
	"fmt"
	"sync"
	"time"
)

// parallelLaunches is how many containers the parallel figure launches at once.
const parallelLaunches = 10

// The parallel figure's rows, for Berth and (prefixed "LXD: ") for LXD.
var (
	parallelReturnedRow = fmt.Sprintf("%d parallel launches (last command returns)", parallelLaunches)
	parallelRunningRow  = fmt.Sprintf("%d parallel launches -> all running", parallelLaunches)
)

// benchParallel launches parallelLaunches containers at once, *runs times, and measures
// until the last of them runs (by systemd's finish in each, boottime.go), the launch
// throughput figure of issue 12; the containers are deleted after each run.
func benchParallel(b *berthd, r *report) error {
	for i := 0; i < *runs; i++ {
		err := parallelRun(b, r, i)
		if err != nil {
			return err
		}
	}

	return nil
}

func parallelRun(b *berthd, r *report, run int) error {
	names := make([]string, parallelLaunches)
	for j := range names {
		names[j] = fmt.Sprintf("p%d-%d", run, j)
	}

	defer func() {
		for _, n := range names {
			_, _ = b.berth("delete", "-f", n)
		}
	}()

	returned, running, err := launchAtOnce(names,
		func(n string) error { _, err := b.berth("launch", "debian/12", n); return err },
		b.waitInstance)
	if err != nil {
		return fmt.Errorf("parallel launch: %w", err)
	}

	r.add(parallelReturnedRow, returned)
	r.add(parallelRunningRow, running)
	return nil
}

// launchAtOnce launches names all at once (launch returns once the command does; wait
// returns the init pid once systemd is up) and returns how long until the last command
// returned and until the last systemd finished booting. The latter ends at systemd's own
// finish, not when the bench saw it, read once all have booted: a read is two execs, CPU
// the boots still running would lose.
func launchAtOnce(names []string, launch func(string) error, wait func(string) (int, error)) (returned, running time.Duration, err error) {
	pids := make([]int, len(names))
	errs := make([]error, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	m0 := monotonic()
	for j, n := range names {
		wg.Go(func() {
			errs[j] = launch(n)
			if errs[j] != nil {
				return
			}

			mu.Lock()
			returned = max(returned, monotonic()-m0)
			mu.Unlock()

			pids[j], errs[j] = wait(n)
		})
	}

	wg.Wait()
	last, err := lastFinish(names, pids, errs)
	if err != nil {
		return 0, 0, err
	}

	return returned, last - m0, nil
}

// lastFinish is the latest of the boots' finish of the instances names, whose inits are
// pids, once every wait (errs) has ended.
func lastFinish(names []string, pids []int, errs []error) (time.Duration, error) {
	var last time.Duration
	for j, name := range names {
		if errs[j] != nil {
			return 0, fmt.Errorf("%s: %w", name, errs[j])
		}

		b, err := bootOf(pids[j])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}

		last = max(last, b.finish)
	}

	return last, nil
}
