package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/storage"
)

// benchBootAB answers "is any of a boot's time ours?": it boots, interleaved in one run,
// the same image as
//   - berth: a container as Berth starts it by default (LXD's default seccomp deny list,
//     lxcfs, a filtered NIC, idmapped layers, limits);
//   - berth-noseccomp: the same with security.syscalls.deny_default=false;
//   - floor: the stopped container's rootfs booted by util-linux alone (floor.go: no
//     seccomp list, no lxcfs, no NIC, no monitor);
//
// and records for each boot the wall time from the command to systemd's start and to its
// finish, systemd's own userspace boot, and the CPU time the boot cost in the
// container's cgroup (cgroup2 cpu.stat usage_usec at the finish), which other work on the
// machine does not inflate as it does wall time.
func benchBootAB(b *berthd, r *report) error {
	for _, n := range []string{"ab", "abnosec"} {
		_, err := b.berth("launch", "debian/12", n)
		if err != nil {
			return err
		}

		defer func() { _, _ = b.berth("delete", "-f", n) }()
	}

	_, err := b.berth("config", "set", "abnosec", "security.syscalls.deny_default=false")
	if err != nil {
		return err
	}

	_, err = b.berth("launch", "debian/12", "abfloor")
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", "abfloor") }()
	for _, n := range []string{"ab", "abnosec", "abfloor"} {
		_, err = b.berth("stop", n)
		if err != nil {
			return err
		}
	}

	ids, err := instanceIDs(b, "abfloor")
	if err != nil {
		return err
	}

	pool, err := storage.Load("overlay", filepath.Join(b.dir, "storage-pools", "default"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}

	layout, err := cgroup.Detect()
	if err != nil {
		return err
	}

	for i := 0; i < *runs; i++ {
		for _, v := range []struct{ what, name string }{{"berth", "ab"}, {"berth-noseccomp", "abnosec"}} {
			cpu0, _ := procCPU(b.cmd.Process.Pid)
			t0 := monotonic()
			_, err := b.berth("start", v.name)
			if err != nil {
				return err
			}

			r.addStartCPU(b, v.what, v.name, cpu0)

			pid, err := b.waitInstance(v.name)
			if err != nil {
				return err
			}

			err = r.addABBoot(v.what, t0, pid)
			if err != nil {
				return err
			}

			_, err = b.berth("stop", v.name)
			if err != nil {
				return err
			}
		}

		_, err = bootFloor(pool, layout, ids, "abfloor", func(pid int, t0 time.Duration) error { return r.addABBoot("floor", t0, pid) })
		if err != nil {
			return err
		}
	}

	return nil
}

// addABBoot records one boot of variant what, begun at t0, whose systemd is pid.
func (r *report) addABBoot(what string, t0 time.Duration, pid int) error {
	bt, err := bootOf(pid)
	if err != nil {
		return err
	}

	cpu, err := bootCPU(pid)
	if err != nil {
		return err
	}

	r.add(what+": command -> systemd starts", bt.userspace-t0)
	r.add(what+": command -> running (systemd's finish)", bt.finish-t0)
	r.add(what+": systemd userspace boot (systemd-analyze)", bt.analyze())
	r.add(what+": CPU time of the boot (container cgroup)", cpu)
	return nil
}

// bootCPU is the CPU time used in the cgroup that holds pid's init.scope, read from the
// cgroup2 hierarchy (its cpu.stat has usage_usec without any controller enabled).
func bootCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return 0, err
	}

	var path string
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = strings.TrimSuffix(p, "/init.scope")
		}
	}

	mnt := "/sys/fs/cgroup"
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err == nil {
		mnt = "/sys/fs/cgroup/unified"
	}

	stat, err := os.ReadFile(filepath.Join(mnt, path, "cpu.stat"))
	if err != nil {
		return 0, err
	}

	for _, l := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}

	return 0, fmt.Errorf("no usage_usec in %s", filepath.Join(mnt, path, "cpu.stat"))
}

// addStartCPU records the CPU time berthd spent since cpu0 (before a `berth start` that
// has just returned) and the CPU time of the instance's monitor so far (spawned as a
// spare before the start: its runtime's start-up, then the container's).
func (r *report) addStartCPU(b *berthd, what, name string, cpu0 time.Duration) {
	cpu1, err := procCPU(b.cmd.Process.Pid)
	if err == nil && cpu0 > 0 {
		r.add(what+": berthd CPU per start (until the command returns)", cpu1-cpu0)
	}

	data, err := os.ReadFile(filepath.Join(b.dir, "instances", name, "run", "monitor.pid"))
	if err != nil {
		return
	}

	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	mon, err := procCPU(pid)
	if err == nil {
		r.add(what+": monitor CPU at the start's return", mon)
	}
}

// procCPU is the user and system CPU time of a process (all its threads, living or not),
// from /proc/PID/stat, in clock ticks (10 ms here): compare medians of several runs.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}

	// "pid (comm) state ppid ...": utime and stime are the 14th and 15th fields, the
	// 12th and 13th after the comm.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}

	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("reading /proc/%d/stat: %q %q", pid, f[11], f[12])
	}

	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux's every
// architecture Berth runs on).
const clockTicks = 100
