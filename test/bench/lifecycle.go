package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchLifecycle measures launch → running, stop, start → running, each next to
// systemd's own boot time in the same container (boottime.go), berthd's CPU per launch,
// and the memory of the daemon and of each monitor with the bench's containers running.
func benchLifecycle(b *berthd, r *report) error {
	names := []string{}
	for i := 0; i < *runs; i++ {
		name := fmt.Sprintf("b%d", i)
		cpu0, cerr := procCPU(b.cmd.Process.Pid)
		t0, m0 := time.Now(), monotonic()
		_, err := b.berth("launch", "debian/12", name)
		if err != nil {
			return err
		}

		r.add("berth launch (command returns)", time.Since(t0))
		// The daemon's own CPU for a create and a first start (clock ticks: 10 ms steps).
		if cpu1, err := procCPU(b.cmd.Process.Pid); err == nil && cerr == nil {
			r.add("berthd CPU per launch (until the command returns)", cpu1-cpu0)
		}
		pid, err := b.waitInstance(name)
		if err != nil {
			return err
		}

		r.add("launch -> is-system-running=running (polled)", time.Since(t0))
		bt, err := bootOf(pid)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}

		r.addBoot("launch", m0, bt)
		names = append(names, name)
	}

	r.note("PSS with %d containers running: berthd %s, monitors %s", len(names), pss(b.cmd.Process.Pid), monitorsPSS(b.dir, names))

	for _, name := range names {
		t0 := time.Now()
		_, err := b.berth("stop", name)
		if err != nil {
			return err
		}

		r.add("berth stop (clean, SIGRTMIN+3)", time.Since(t0))
	}

	for _, name := range names {
		t0, m0 := time.Now(), monotonic()
		_, err := b.berth("start", name)
		if err != nil {
			return err
		}

		r.add("berth start (command returns)", time.Since(t0))
		pid, err := b.waitInstance(name)
		if err != nil {
			return err
		}

		r.add("start -> is-system-running=running (polled)", time.Since(t0))
		bt, err := bootOf(pid)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}

		r.addBoot("start", m0, bt)
	}

	for _, name := range names {
		_, err := b.berth("delete", "-f", name)
		if err != nil {
			return err
		}
	}

	return nil
}

// pss reads the proportional set size of a process.
func pss(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return "?"
	}

	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Pss:" {
			return f[1] + " kB"
		}
	}

	return "?"
}

func monitorsPSS(dir string, names []string) string {
	out := []string{}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, "instances", n, "run", "monitor.pid"))
		if err != nil {
			continue
		}

		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		out = append(out, pss(pid))
	}

	return strings.Join(out, ", ")
}
