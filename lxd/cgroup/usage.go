package cgroup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/sys"
)

// Usage is a container group's resource accounting as the metrics endpoint reports it.
// Fields a host cannot provide (a controller that is not mounted or not enabled) stay at
// their "unknown" value, documented per field.
type Usage struct {
	// CPU is the time spent per CPU. cgroup2 has no per-CPU split: there CPU holds one
	// entry, CPU 0, with the whole group's time (LXD reports it the same way).
	CPU []CPUTime
	// CPUs is the number of CPUs the group may run on (its effective cpuset, lowered to
	// the whole CPUs its quota allows); 0 is unknown.
	CPUs int

	// Memory holds memory.stat in the v1 names LXD reports (see memoryKeys), with
	// active and inactive summed from their anon and file parts.
	Memory map[string]uint64
	// MemoryUsage is what the group is charged (page cache included); -1 is unknown.
	MemoryUsage int64
	// MemoryLimit is the hard limit; -1 is none or unknown.
	MemoryLimit int64
	// Swap is the swap the group uses; -1 is unknown.
	Swap int64
	// OOMKills counts the processes the kernel's OOM killer killed in the group.
	OOMKills uint64

	// IO is the block I/O per device, keyed "major:minor". Loop devices are left out.
	IO map[string]IOStat

	// Tasks is pids.current (processes and threads); -1 is unknown.
	Tasks int64
}

// CPUTime is one CPU's user and system time, in nanoseconds.
type CPUTime struct {
	CPU          int
	User, System uint64
}

// IOStat is one block device's traffic.
type IOStat struct {
	ReadBytes, WrittenBytes uint64
	Reads, Writes           uint64
}

// maxStatFile caps what is read of one accounting file. memory.stat and io.stat are a few
// KiB; the cap only bounds the daemon's work if a kernel ever grows them.
const maxStatFile = 256 << 10

// ErrGone is returned by ReadUsage when the group does not exist (the container stopped).
var ErrGone = errors.New("cgroup does not exist")

// ReadUsage reads the accounting of container name's group: a dozen small files, no walk
// of the subtree, so it stays cheap at a thousand containers.
func (l Layout) ReadUsage(name string) (Usage, error) {
	g, err := New(name, l)
	if err != nil {
		return Usage{}, err
	}

	switch g := g.(type) {
	case *v1Group:
		return g.usage()
	case *v2Group:
		return usageV2(g.dir)
	case *systemdGroup:
		return usageV2(g.dir)
	}

	return Usage{}, fmt.Errorf("no accounting for %T", g)
}

func newUsage() Usage {
	return Usage{Memory: map[string]uint64{}, MemoryUsage: -1, MemoryLimit: -1, Swap: -1, Tasks: -1, IO: map[string]IOStat{}}
}

// usage reads the v1 controllers; on hybrid hosts they hold the accounting while the
// cgroup2 tree carries none.
func (g *v1Group) usage() (Usage, error) {
	u := newUsage()

	// The memory group tells whether the container still runs: every container has one.
	mem, ok := g.dirs["memory"]
	if ok {
		stat, err := readStatFile(filepath.Join(mem, "memory.stat"))
		if err != nil {
			return u, err
		}

		u.Memory = memoryFromStat(stat, true)
		u.MemoryUsage = optInt(filepath.Join(mem, "memory.usage_in_bytes"))
		// The limit in force, the lowest on the way up: no need to read limit_in_bytes.
		limit, ok := stat["hierarchical_memory_limit"]
		if ok && limit < 1<<62 {
			u.MemoryLimit = int64(limit)
		}
		memsw := optInt(filepath.Join(mem, "memory.memsw.usage_in_bytes"))
		if memsw >= 0 && u.MemoryUsage >= 0 && memsw >= u.MemoryUsage {
			u.Swap = memsw - u.MemoryUsage
		}

		oom, _ := readStatFile(filepath.Join(mem, "memory.oom_control"))
		u.OOMKills = oom["oom_kill"]
	}

	d, ok := g.dirs["cpuacct"]
	if ok {
		u.CPU = cpuacctUsageAll(filepath.Join(d, "cpuacct.usage_all"))
	}

	d, ok = g.dirs["cpuset"]
	if ok {
		u.CPUs = countCPUs(filepath.Join(d, "cpuset.effective_cpus"))
	}

	d, ok = g.dirs["cpu"]
	if ok {
		quota := optInt(filepath.Join(d, "cpu.cfs_quota_us"))
		if quota > 0 {
			u.CPUs = quotaCPUs(u.CPUs, quota, optInt(filepath.Join(d, "cpu.cfs_period_us")))
		}
	}

	d, ok = g.dirs["blkio"]
	if ok {
		blkioInto(u.IO, filepath.Join(d, "blkio.throttle.io_service_bytes_recursive"), true)
		blkioInto(u.IO, filepath.Join(d, "blkio.throttle.io_serviced_recursive"), false)
	}

	d, ok = g.dirs["pids"]
	if ok {
		u.Tasks = optInt(filepath.Join(d, "pids.current"))
	}

	return u, nil
}

// usageV2 reads a cgroup2 group. cpu.stat is there without the cpu controller; the
// others need their controller enabled above the group (v2Group and systemd do that).
func usageV2(dir string) (Usage, error) {
	u := newUsage()

	cpu, err := readStatFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return u, err
	}

	u.CPU = []CPUTime{{CPU: 0, User: cpu["user_usec"] * 1000, System: cpu["system_usec"] * 1000}}

	stat, err := readStatFile(filepath.Join(dir, "memory.stat"))
	if err == nil {
		u.Memory = memoryFromStat(stat, false)
		u.MemoryUsage = optInt(filepath.Join(dir, "memory.current"))
		u.MemoryLimit = optInt(filepath.Join(dir, "memory.max")) // "max" reads as -1
		u.Swap = optInt(filepath.Join(dir, "memory.swap.current"))
		events, _ := readStatFile(filepath.Join(dir, "memory.events"))
		u.OOMKills = events["oom_kill"]
	}

	u.CPUs = countCPUs(filepath.Join(dir, "cpuset.cpus.effective"))
	quota, period := cpuMax(filepath.Join(dir, "cpu.max"))
	u.CPUs = quotaCPUs(u.CPUs, quota, period)
	ioStatInto(u.IO, filepath.Join(dir, "io.stat"))
	u.Tasks = optInt(filepath.Join(dir, "pids.current"))

	return u, nil
}

// memoryKeys maps memory.stat keys to the names the metrics use: v1's hierarchical
// "total_" keys (the group and everything below it) and cgroup2's keys, which are
// hierarchical already. cgroup2 has no "rss": its "anon" is the same memory (anonymous
// pages; v1's rss also counts swap cache, which cgroup2 keeps out).
var memoryKeys = map[bool]map[string]string{
	true: { // v1
		"total_active_anon": "active_anon", "total_active_file": "active_file",
		"total_inactive_anon": "inactive_anon", "total_inactive_file": "inactive_file",
		"total_unevictable": "unevictable", "total_writeback": "writeback", "total_dirty": "dirty",
		"total_mapped_file": "mapped", "total_rss": "rss", "total_shmem": "shmem", "total_cache": "cache",
	},
	false: { // v2
		"active_anon": "active_anon", "active_file": "active_file",
		"inactive_anon": "inactive_anon", "inactive_file": "inactive_file",
		"unevictable": "unevictable", "file_writeback": "writeback", "file_dirty": "dirty",
		"file_mapped": "mapped", "anon": "rss", "shmem": "shmem", "file": "cache",
		"slab_reclaimable": "slab_reclaimable",
	},
}

func memoryFromStat(stat map[string]uint64, v1 bool) map[string]uint64 {
	out := map[string]uint64{}
	for k, name := range memoryKeys[v1] {
		v, ok := stat[k]
		if ok {
			out[name] = v
		}
	}

	out["active"] = out["active_anon"] + out["active_file"]
	out["inactive"] = out["inactive_anon"] + out["inactive_file"]

	return out
}

// readBounded reads at most maxStatFile bytes of an accounting file.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrGone, path)
		}

		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	defer f.Close()

	b, err := io.ReadAll(io.LimitReader(f, maxStatFile))
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", path, err)
	}

	return b, nil
}

// readStatFile reads "key value" lines (memory.stat, cpu.stat, memory.events,
// memory.oom_control). Lines that do not parse are left out.
func readStatFile(path string) (map[string]uint64, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}

	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}

		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil {
			out[k] = n
		}
	}

	return out, nil
}

// optInt reads a one-number file; -1 when it is missing, unreadable or "max".
func optInt(path string) int64 {
	b, err := readBounded(path)
	if err != nil {
		return -1
	}

	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}

	return n
}

// cpuacctUsageAll parses cpuacct.usage_all: a header, then "cpu user system" in ns.
func cpuacctUsageAll(path string) []CPUTime {
	b, err := readBounded(path)
	if err != nil {
		return nil
	}

	var out []CPUTime
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}

		cpu, err1 := strconv.Atoi(f[0])
		user, err2 := strconv.ParseUint(f[1], 10, 64)
		system, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			out = append(out, CPUTime{CPU: cpu, User: user, System: system})
		}
	}

	return out
}

// countCPUs counts the CPUs of a cpuset list file; 0 when unknown.
func countCPUs(path string) int {
	b, err := readBounded(path)
	if err != nil {
		return 0
	}

	cpus, err := sys.ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}

	return len(cpus)
}

// cpuMax parses cgroup2's cpu.max, "max 100000" or "200000 100000"; quota -1 is none.
func cpuMax(path string) (quota, period int64) {
	b, err := readBounded(path)
	if err != nil {
		return -1, -1
	}

	f := strings.Fields(string(b))
	if len(f) != 2 {
		return -1, -1
	}

	quota, err = strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		quota = -1
	}

	period, err = strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		period = -1
	}

	return quota, period
}

// quotaCPUs lowers a CPU count to what a CFS quota allows, rounded up to whole CPUs
// (limits.cpu=2 is a quota of two CPUs in Berth, not a pinning).
func quotaCPUs(cpus int, quota, period int64) int {
	if quota <= 0 || period <= 0 {
		return cpus
	}

	n := int((quota + period - 1) / period)
	if cpus == 0 || n < cpus {
		return n
	}

	return cpus
}

// loopMajor is the loop block device's major number: its traffic is counted again on
// the device under the image file, so it is left out.
const loopMajor = "7:"

// blkioInto parses blkio.throttle.io_service{_bytes,d}_recursive: "8:0 Read 4096" lines
// (and "Total" lines, which are left out).
func blkioInto(out map[string]IOStat, path string, bytes bool) {
	b, err := readBounded(path)
	if err != nil {
		return
	}

	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(f[0], loopMajor) || !strings.Contains(f[0], ":") {
			continue
		}

		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}

		s := out[f[0]]
		switch {
		case f[1] == "Read" && bytes:
			s.ReadBytes = n
		case f[1] == "Write" && bytes:
			s.WrittenBytes = n
		case f[1] == "Read":
			s.Reads = n
		case f[1] == "Write":
			s.Writes = n
		default:
			continue
		}

		out[f[0]] = s
	}
}

// ioStatInto parses cgroup2's io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
func ioStatInto(out map[string]IOStat, path string) {
	b, err := readBounded(path)
	if err != nil {
		return
	}

	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], loopMajor) || !strings.Contains(f[0], ":") {
			continue
		}

		var s IOStat
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}

			switch k {
			case "rbytes":
				s.ReadBytes = n
			case "wbytes":
				s.WrittenBytes = n
			case "rios":
				s.Reads = n
			case "wios":
				s.Writes = n
			}
		}

		out[f[0]] = s
	}
}
