package main

import (
	"fmt"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// The machine section prices the work every other figure is made of, so that figures
// from two machines can be compared. A virtual machine can charge much more than bare
// metal for the same work: the development VM of 2026-12-07 (a PVM guest) took ~15 µs
// for the first touch of an anonymous page, where bare metal takes well under 1 µs.
// Every process start pays that for its heap, stacks and relocated data: a Go program
// touches ~150 pages before main, `berth list` ~450, systemd's own exec ~475. The
// figures that start processes (the CLI's, the launch ratios, parallel launches) move
// with it.

const (
	faultPages  = 2048 // 8 MB: well past any cache, short enough to run each time
	machineRuns = 20
)

// benchMachine adds the machine's prices to r: a page fault, a fork and exec of a small
// C program, and the CLI's own start (berth help: no request).
func benchMachine(binDir string, r *report) error {
	for i := 0; i < machineRuns; i++ {
		d, err := anonFault(faultPages)
		if err != nil {
			return err
		}

		r.add("machine: first touch of an anonymous page", d)
	}

	for _, c := range []struct {
		name string
		argv []string
	}{
		{"machine: fork+exec of /bin/true", []string{"/bin/true"}},
		{"machine: berth help (the CLI's own start, no request)", []string{absBin(binDir, "berth"), "help"}},
	} {
		for i := 0; i < machineRuns; i++ {
			d, err := timeExec(c.argv)
			if err != nil {
				return err
			}

			r.add(c.name, d)
		}
	}

	return nil
}

// anonFault maps n fresh anonymous pages, writes one byte to each and returns the time
// per page: a page fault, the zeroing of the page and its mapping.
func anonFault(n int) (time.Duration, error) {
	size := n * unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	if err != nil {
		return 0, fmt.Errorf("mapping %d pages: %w", n, err)
	}

	defer func() { _ = unix.Munmap(mem) }()

	t0 := time.Now()
	for off := 0; off < size; off += unix.Getpagesize() {
		mem[off] = 1
	}

	return time.Since(t0) / time.Duration(n), nil
}

// timeExec runs argv and returns how long it took, from fork to its exit.
func timeExec(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%v: %w: %s", argv, err, trim(string(out)))
	}

	return d, nil
}
