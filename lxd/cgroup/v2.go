package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// v2Controllers are enabled for the container subtree on pure cgroup2 hosts.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// v2Group is a container cgroup on a pure cgroup2 host, managed by writing
// the tree directly. On a host whose PID 1 is systemd this writes behind
// systemd's back; the proper way there is a transient scope with
// Delegate=yes over D-Bus: that is systemdGroup (systemd.go).
type v2Group struct {
	name   string
	dir    string // <root>/berth/<name>
	parent string // <root>/berth
	root   string // cgroup2 mount point
}

func (g *v2Group) Name() string { return g.name }

func (g *v2Group) NamespacePath() string { return g.dir }

func (g *v2Group) Create() error {
	err := os.MkdirAll(g.dir, 0o755)
	if err != nil {
		return fmt.Errorf("creating cgroup %q: %w", g.dir, err)
	}

	// Controllers must be enabled in every ancestor's subtree_control to be
	// available in the container's cgroup (and so to its systemd).
	for _, d := range []string{g.root, g.parent} {
		err = enableControllers(d)
		if err != nil {
			return err
		}
	}

	return nil
}

// enableControllers turns on each wanted controller the directory offers,
// one at a time, so that one refusal (cpu with realtime tasks, say) does
// not lose the others.
func enableControllers(dir string) error {
	avail, err := readString(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}

	for _, c := range v2Controllers {
		if !strings.Contains(" "+avail+" ", " "+c+" ") {
			continue
		}

		_ = writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c)
	}

	return nil
}

func (g *v2Group) AddProc(pid int) error {
	err := writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
	if err != nil {
		return fmt.Errorf("adding process %d to cgroup: %w", pid, err)
	}

	return nil
}

func (g *v2Group) Delegate(uid, gid int) error {
	return delegate(g.dir, uid, gid)
}

func (g *v2Group) SetLimits(l Limits) error {
	mem := "max"
	if l.MemoryBytes > 0 {
		mem = strconv.FormatInt(l.MemoryBytes, 10)
	}

	err := writeFile(filepath.Join(g.dir, "memory.max"), mem)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("setting memory limit: %w", err)
	}

	cpu, err := planCPU(l)
	if err != nil {
		return err
	}

	quota := "max"
	if cpu.quota > 0 {
		quota = strconv.FormatInt(cpu.quota, 10)
	}

	err = writeFile(filepath.Join(g.dir, "cpu.max"), fmt.Sprintf("%s %d", quota, cpu.period))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("setting cpu quota: %w", err)
	}

	// An empty cpuset.cpus means the parent's CPUs; a bare write of
	// nothing would not reach the kernel, a newline does.
	err = writeFile(filepath.Join(g.dir, "cpuset.cpus"), cpu.cpuset+"\n")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("setting cpuset: %w", err)
	}

	err = writeFile(filepath.Join(g.dir, "pids.max"), pidsMax(l.PidsMax))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("setting pids limit: %w", err)
	}

	return nil
}

func (g *v2Group) Freeze() error { return freezeV2(g.dir, true) }

func (g *v2Group) Thaw() error { return freezeV2(g.dir, false) }

func (g *v2Group) Frozen() (bool, error) {
	n, err := readKey(filepath.Join(g.dir, "cgroup.events"), "frozen")
	return n == 1, err
}

func (g *v2Group) Stats() (Stats, error) {
	var s Stats

	procs, err := g.Procs()
	if err != nil {
		return s, err
	}

	s.Processes = len(procs)

	usec, err := readKey(filepath.Join(g.dir, "cpu.stat"), "usage_usec")
	if err != nil {
		return s, err
	}

	s.CPUNanos = usec * 1000

	s.MemoryBytes, err = readInt(filepath.Join(g.dir, "memory.current"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}

	s.Pids, err = readInt(filepath.Join(g.dir, "pids.current"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}

	return s, nil
}

func (g *v2Group) Procs() ([]int, error) { return procsIn(g.dir) }

func (g *v2Group) Remove() error {
	err := killV2(g.dir)
	if err != nil {
		return err
	}

	return removeTree(g.dir)
}

// freezeV2 writes cgroup.freeze and waits for cgroup.events to agree: the
// write only starts freezing.
func freezeV2(dir string, frozen bool) error {
	want := int64(0)
	if frozen {
		want = 1
	}

	err := writeFile(filepath.Join(dir, "cgroup.freeze"), strconv.FormatInt(want, 10))
	if err != nil {
		return err
	}

	err = waitFor(10*time.Second, func() (bool, error) {
		n, err := readKey(filepath.Join(dir, "cgroup.events"), "frozen")
		return n == want, err
	})
	if err != nil {
		return fmt.Errorf("waiting for %q to reach frozen=%d: %w", dir, want, err)
	}

	return nil
}

// killV2 kills everything in a cgroup2 subtree: with cgroup.kill (5.14+)
// in one step, else process by process.
func killV2(dir string) error {
	_, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}

	err = writeFile(filepath.Join(dir, "cgroup.kill"), "1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	// Frozen tasks die only once thawed (cgroup.kill handles that itself,
	// the fallback does not).
	_ = writeFile(filepath.Join(dir, "cgroup.freeze"), "0")

	return killAll(dir, 10*time.Second)
}
