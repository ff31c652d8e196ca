package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// parallelLaunches is how many containers the parallel figure launches at once.
const parallelLaunches = 10

// The parallel figure's rows, for Berth and (prefixed "LXD: ") for LXD.
var (
	parallelReturnedRow = fmt.Sprintf("%d parallel launches (last command returns)", parallelLaunches)
	parallelRunningRow  = fmt.Sprintf("%d parallel launches -> all running", parallelLaunches)
	parallelBootsRow    = fmt.Sprintf("%d parallel launches: CPU of the boots (containers' cgroups)", parallelLaunches)
	parallelFloorRow    = fmt.Sprintf("%d parallel launches: CPU of the boots / %d CPUs (floor of -> running)", parallelLaunches, runtime.NumCPU())
	parallelOutsideRow  = fmt.Sprintf("%d parallel launches: CPU outside the containers", parallelLaunches)
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

	got, err := launchAtOnce(names,
		func(n string) error { _, err := b.berth("launch", "debian/12", n); return err },
		b.waitInstance)
	if err != nil {
		return fmt.Errorf("parallel launch: %w", err)
	}

	r.addAtOnce("", got)
	return nil
}

// addAtOnce records what launchAtOnce measured, its rows prefixed with prefix.
func (r *report) addAtOnce(prefix string, got atOnce) {
	r.add(prefix+parallelReturnedRow, got.returned)
	r.add(prefix+parallelRunningRow, got.running)
	r.add(prefix+parallelBootsRow, got.boots)
	r.add(prefix+parallelFloorRow, got.boots/time.Duration(runtime.NumCPU()))
	r.add(prefix+parallelOutsideRow, got.outside)
}

// atOnce is what launchAtOnce measured.
type atOnce struct {
	returned time.Duration // until the last command returned
	running  time.Duration // until the last systemd finished booting
	// The CPU time the boots took in the containers' own cgroups, and all other CPU time
	// the machine spent meanwhile (the daemon, monitors, the kernel's work for them, the
	// bench's own waits, anything else running). The boots' CPU spread over every CPU is
	// the floor under running, whatever the daemon does: it says what the machine allows.
	boots, outside time.Duration
}

// launchAtOnce launches names all at once (launch returns once the command does; wait
// returns the init pid once systemd is up) and returns how long until the last command
// returned and until the last systemd finished booting, and where the CPU went. The
// latter ends at systemd's own finish, not when the bench saw it, read once all have
// booted: a read is two execs, CPU the boots still running would lose.
func launchAtOnce(names []string, launch func(string) error, wait func(string) (int, error)) (atOnce, error) {
	var got atOnce
	busy0, err := machineBusy()
	if err != nil {
		return got, err
	}

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
			got.returned = max(got.returned, monotonic()-m0)
			mu.Unlock()

			pids[j], errs[j] = wait(n)
		})
	}

	wg.Wait()
	for j, name := range names {
		if errs[j] != nil {
			return got, fmt.Errorf("%s: %w", name, errs[j])
		}
	}

	got.boots, got.outside, err = cpuSince(busy0, names, pids)
	if err != nil {
		return got, err
	}

	last, err := lastFinish(names, pids)
	if err != nil {
		return got, err
	}

	got.running = last - m0
	return got, nil
}

// lastFinish is the latest of the boots' finish of the instances names, whose inits are
// pids.
func lastFinish(names []string, pids []int) (time.Duration, error) {
	var last time.Duration
	for j, name := range names {
		b, err := bootOf(pids[j])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}

		last = max(last, b.finish)
	}

	return last, nil
}
