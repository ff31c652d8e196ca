package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// cpuSince returns the CPU time the containers (the inits pids of names) have used in
// their own cgroups, and the CPU time the rest of the machine has used since it was busy0
// busy (machineBusy). Both are read at once, so a container's idle time after its boot
// counts on both sides of the same instant.
func cpuSince(busy0 time.Duration, names []string, pids []int) (boots, outside time.Duration, err error) {
	busy1, err := machineBusy()
	if err != nil {
		return 0, 0, err
	}

	for j, name := range names {
		cpu, err := bootCPU(pids[j])
		if err != nil {
			return 0, 0, fmt.Errorf("%s: CPU of its cgroup: %w", name, err)
		}

		boots += cpu
	}

	return boots, max(0, busy1-busy0-boots), nil
}

// machineBusy is the CPU time all CPUs have spent busy since boot: /proc/stat's user,
// nice, system, irq and softirq (not idle, iowait, or steal: the hypervisor's, which no
// process here spent).
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}

	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("unexpected first line of /proc/stat: %q", line)
	}

	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system [idle iowait] irq softirq
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat field %d: %w", i, err)
		}

		ticks += v
	}

	return time.Duration(ticks) * time.Second / clockTicks, nil
}
