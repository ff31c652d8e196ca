package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes one cgroup control file. Cgroup files reject partial
// writes and report their errors from write(2), so no O_CREAT/O_TRUNC games.
func writeFile(path string, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", path, err)
	}

	_, err = f.WriteString(value)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %q to %q: %w", value, path, err)
	}

	err = f.Close()
	if err != nil {
		return fmt.Errorf("closing %q: %w", path, err)
	}

	return nil
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %q: %w", path, err)
	}

	return strings.TrimSpace(string(b)), nil
}

func readInt(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}

	if s == "max" {
		return -1, nil
	}

	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %q: %w", path, err)
	}

	return n, nil
}

// readKey reads "key value" lines (cpu.stat, cgroup.events) and returns the
// value of key.
func readKey(path string, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading %q: %w", path, err)
	}

	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s in %q: %w", key, path, err)
			}

			return n, nil
		}
	}

	return 0, fmt.Errorf("no %s in %q", key, path)
}

// procsIn lists the pids in dir's cgroup.procs and those of every
// sub-cgroup below it.
func procsIn(dir string) ([]int, error) {
	var pids []int

	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}

			return err
		}

		if !d.IsDir() {
			return nil
		}

		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}

			return err
		}

		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err == nil {
				pids = append(pids, pid)
			}
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing processes in %q: %w", dir, err)
	}

	return pids, nil
}

// killAll SIGKILLs every process in dir's subtree until it is empty. Used
// where cgroup.kill is missing (v1 hierarchies, kernels before 5.14).
func killAll(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)

	for {
		pids, err := procsIn(dir)
		if err != nil {
			return err
		}

		if len(pids) == 0 {
			return nil
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in %q after %s", pids, dir, timeout)
		}

		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}

		time.Sleep(20 * time.Millisecond)
	}
}

// removeTree removes dir and its sub-cgroups, deepest first. Cgroup
// directories can only be removed with rmdir, and only once empty of
// processes and children. A missing dir is not an error.
func removeTree(dir string) error {
	var dirs []string

	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}

			return err
		}

		if d.IsDir() {
			dirs = append(dirs, path)
		}

		return nil
	})
	if err != nil {
		return fmt.Errorf("walking %q: %w", dir, err)
	}

	slices.Reverse(dirs)

	for _, d := range dirs {
		err = rmdirRetry(d)
		if err != nil {
			return err
		}
	}

	return nil
}

// rmdirRetry retries EBUSY for a short while: a killed process leaves its
// cgroup only once fully reaped, which races with reading cgroup.procs.
func rmdirRetry(dir string) error {
	var err error

	for range 100 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}

		if !errors.Is(err, unix.EBUSY) {
			break
		}

		time.Sleep(20 * time.Millisecond)
	}

	return fmt.Errorf("removing cgroup %q: %w", dir, err)
}

// waitFor polls cond every 10ms until it is true or timeout passes.
func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)

	for {
		ok, err := cond()
		if err != nil {
			return err
		}

		if ok {
			return nil
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}

		time.Sleep(10 * time.Millisecond)
	}
}

// delegateFiles are the files a delegatee must own in its cgroup2 root
// (Documentation/admin-guide/cgroup-v2.rst, "Delegation"), read from the
// kernel's list where it publishes one.
func delegateFiles() []string {
	b, err := os.ReadFile("/sys/kernel/cgroup/delegate")
	if err != nil {
		return []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"}
	}

	return strings.Fields(string(b))
}

// delegate chowns a cgroup2 directory and its delegation files.
func delegate(dir string, uid, gid int) error {
	err := os.Chown(dir, uid, gid)
	if err != nil {
		return fmt.Errorf("delegating %q: %w", dir, err)
	}

	for _, f := range delegateFiles() {
		err = os.Chown(filepath.Join(dir, f), uid, gid)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delegating %q: %w", dir, err)
		}
	}

	return nil
}

// parseCPUs reads Limits.CPUs: a plain count ("2") means a CFS quota, and
// anything else is a cpuset list ("0-1", "0,2").
func parseCPUs(s string) (count int64, cpuset string, err error) {
	if s == "" {
		return 0, "", nil
	}

	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		if n <= 0 {
			return 0, "", fmt.Errorf("invalid cpu count %q", s)
		}

		return n, "", nil
	}

	for _, r := range s {
		if (r < '0' || r > '9') && r != '-' && r != ',' {
			return 0, "", fmt.Errorf("invalid cpu list %q", s)
		}
	}

	return 0, s, nil
}

// cfsPeriod is the CFS period for CPU quotas, in microseconds.
const cfsPeriod = 100000

// cpuPlan is what Limits asks of the cpu and cpuset controllers: quota < 0
// means no quota, cpuset "" means all of the parent's CPUs.
type cpuPlan struct {
	quota, period int64
	cpuset        string
}

func planCPU(l Limits) (cpuPlan, error) {
	count, cpuset, err := parseCPUs(l.CPUs)
	if err != nil {
		return cpuPlan{}, err
	}

	p := cpuPlan{quota: -1, period: cfsPeriod, cpuset: cpuset}
	if count > 0 {
		p.quota = count * cfsPeriod
	}

	if l.CPUSet != "" {
		p.cpuset = l.CPUSet
	}

	if l.CPUQuotaUs > 0 {
		p.quota = l.CPUQuotaUs
		if l.CPUPeriodUs > 0 {
			p.period = l.CPUPeriodUs
		}
	}

	return p, nil
}

func pidsMax(n int64) string {
	switch {
	case n == 0:
		return strconv.Itoa(DefaultPidsMax)
	case n < 0:
		return "max"
	}

	return strconv.FormatInt(n, 10)
}
