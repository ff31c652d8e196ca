package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// v1Group places a container in the v1 controller hierarchies and, on
// hybrid hosts, in the cgroup2 hierarchy too: that one carries no
// controllers but is what the container's systemd manages (it becomes the
// root of the cgroup namespace) and offers cgroup.freeze and cgroup.kill.
type v1Group struct {
	name    string
	dirs    map[string]string // controller -> group dir
	unified string            // cgroup2 group dir, "" on legacy hosts
}

func (g *v1Group) Name() string { return g.name }

func (g *v1Group) NamespacePath() string { return g.unified }

// allDirs lists each distinct group directory once (co-mounted controllers
// such as "cpu,cpuacct" share one).
func (g *v1Group) allDirs() []string {
	seen := map[string]bool{}

	var out []string
	for _, c := range v1Controllers {
		d, ok := g.dirs[c]
		if ok && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}

	if g.unified != "" {
		out = append(out, g.unified)
	}

	return out
}

func (g *v1Group) Create() error {
	for _, d := range g.allDirs() {
		err := os.MkdirAll(d, 0o755)
		if err != nil {
			return fmt.Errorf("creating cgroup %q: %w", d, err)
		}
	}

	// A new cpuset cgroup starts with empty cpus and mems, and a process
	// cannot join it until both are filled in from the parent.
	d, ok := g.dirs["cpuset"]
	if ok {
		for _, dir := range []string{filepath.Dir(d), d} {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				err := inheritCpuset(dir, f)
				if err != nil {
					return err
				}
			}
		}
	}

	return nil
}

func inheritCpuset(dir string, file string) error {
	cur, err := readString(filepath.Join(dir, file))
	if err != nil {
		return err
	}

	if cur != "" {
		return nil
	}

	parent, err := readString(filepath.Join(filepath.Dir(dir), file))
	if err != nil {
		return err
	}

	return writeFile(filepath.Join(dir, file), parent)
}

func (g *v1Group) AddProc(pid int) error {
	for _, d := range g.allDirs() {
		err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid))
		if err != nil {
			return fmt.Errorf("adding process %d to cgroup: %w", pid, err)
		}
	}

	return nil
}

func (g *v1Group) Delegate(uid, gid int) error {
	if g.unified == "" {
		return nil
	}

	return delegate(g.unified, uid, gid)
}

func (g *v1Group) SetLimits(l Limits) error {
	d, ok := g.dirs["memory"]
	if ok {
		mem := "-1"
		if l.MemoryBytes > 0 {
			mem = strconv.FormatInt(l.MemoryBytes, 10)
		}

		err := writeFile(filepath.Join(d, "memory.limit_in_bytes"), mem)
		if err != nil {
			return fmt.Errorf("setting memory limit: %w", err)
		}
	}

	cpu, err := planCPU(l)
	if err != nil {
		return err
	}

	d, ok = g.dirs["cpu"]
	if ok {
		// The period first: the kernel checks the quota against it.
		err = writeFile(filepath.Join(d, "cpu.cfs_period_us"), strconv.FormatInt(cpu.period, 10))
		if err == nil {
			err = writeFile(filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(cpu.quota, 10))
		}

		if err != nil {
			return fmt.Errorf("setting cpu quota: %w", err)
		}
	}

	d, ok = g.dirs["cpuset"]
	if ok {
		set := cpu.cpuset
		if set == "" {
			set, err = readString(filepath.Join(filepath.Dir(d), "cpuset.cpus"))
			if err != nil {
				return err
			}
		}

		err = writeFile(filepath.Join(d, "cpuset.cpus"), set)
		if err != nil {
			return fmt.Errorf("setting cpuset: %w", err)
		}
	}

	d, ok = g.dirs["pids"]
	if ok {
		err = writeFile(filepath.Join(d, "pids.max"), pidsMax(l.PidsMax))
		if err != nil {
			return fmt.Errorf("setting pids limit: %w", err)
		}
	}

	return nil
}

// Freeze prefers cgroup2's cgroup.freeze: it freezes the whole subtree the
// container's systemd built, and needs no controller. The v1 freezer is the
// fallback on legacy hosts.
func (g *v1Group) Freeze() error {
	if g.unified != "" {
		return freezeV2(g.unified, true)
	}

	return g.freezeV1("FROZEN")
}

func (g *v1Group) Thaw() error {
	if g.unified != "" {
		return freezeV2(g.unified, false)
	}

	return g.freezeV1("THAWED")
}

func (g *v1Group) freezeV1(state string) error {
	d, ok := g.dirs["freezer"]
	if !ok {
		return errors.New("no freezer hierarchy on this host")
	}

	f := filepath.Join(d, "freezer.state")

	err := writeFile(f, state)
	if err != nil {
		return err
	}

	err = waitFor(10*time.Second, func() (bool, error) {
		cur, err := readString(f)
		return cur == state, err
	})
	if err != nil {
		return fmt.Errorf("waiting for %q to become %s: %w", d, state, err)
	}

	return nil
}

func (g *v1Group) Frozen() (bool, error) {
	if g.unified != "" {
		n, err := readKey(filepath.Join(g.unified, "cgroup.events"), "frozen")
		return n == 1, err
	}

	d, ok := g.dirs["freezer"]
	if !ok {
		return false, nil
	}

	s, err := readString(filepath.Join(d, "freezer.state"))

	return s == "FROZEN", err
}

func (g *v1Group) Stats() (Stats, error) {
	var s Stats

	var err error

	procs, err := g.Procs()
	if err != nil {
		return s, err
	}

	s.Processes = len(procs)

	d, ok := g.dirs["cpuacct"]
	if ok {
		s.CPUNanos, err = readInt(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return s, err
		}
	}

	d, ok = g.dirs["memory"]
	if ok {
		s.MemoryBytes, err = readInt(filepath.Join(d, "memory.usage_in_bytes"))
		if err != nil {
			return s, err
		}
	}

	d, ok = g.dirs["pids"]
	if ok {
		s.Pids, err = readInt(filepath.Join(d, "pids.current"))
		if err != nil {
			return s, err
		}
	}

	return s, nil
}

// Procs reads the unified tree where there is one: the container's systemd
// moves processes around below it, while in the v1 hierarchies they all
// stay in the group's own directory.
func (g *v1Group) Procs() ([]int, error) {
	if g.unified != "" {
		return procsIn(g.unified)
	}

	for _, d := range g.allDirs() {
		return procsIn(d)
	}

	return nil, nil
}

func (g *v1Group) Remove() error {
	if g.unified != "" {
		err := killV2(g.unified)
		if err != nil {
			return err
		}
	}

	for _, d := range g.allDirs() {
		err := killAll(d, 10*time.Second)
		if err != nil {
			return err
		}
	}

	// A frozen v1 cgroup holds its killed tasks; thaw so they can die.
	d, ok := g.dirs["freezer"]
	if ok {
		_ = writeFile(filepath.Join(d, "freezer.state"), "THAWED")
	}

	for _, d := range g.allDirs() {
		err := removeTree(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}

	return nil
}
