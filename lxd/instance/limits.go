package instance

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/api"
)

// limitsOf turns the limits.* keys of an expanded config into cgroup limits:
//
//   - limits.memory: bytes ("512MiB") or a percentage of the host's memory;
//   - limits.cpu: a count pins the container to that many of the least used CPUs (so
//     nproc and sched_getaffinity inside agree), a set ("0-1,3") pins it to those;
//   - limits.cpu.allowance: "25ms/100ms" is a CFS quota per period, "50%" a quota of that
//     share of the CPUs the container may use;
//   - limits.processes: pids.max, cgroup.DefaultPidsMax when unset, so a fork bomb stays in.
func (cf *Configurator) limitsOf(name string, config map[string]string) (container.Limits, error) {
	var l container.Limits

	mem := config["limits.memory"]
	if mem != "" {
		var err error
		l.MemoryBytes, err = memoryBytes(mem)
		if err != nil {
			return l, badLimit("limits.memory", err)
		}
	}

	online, err := sys.OnlineCPUs()
	if err != nil {
		return l, err
	}

	ncpu := len(online)
	cpu := config["limits.cpu"]
	if cpu != "" {
		n, err := strconv.Atoi(cpu)
		if err == nil {
			if n < len(online) {
				l.CPUSet = formatCPUs(pickCPUs(name, online, n, cf.cgroupParent()))
				ncpu = n
			}
		} else {
			set, err := sys.ParseCPUList(cpu)
			if err != nil {
				return l, badLimit("limits.cpu", err)
			}

			for _, c := range set {
				if !slices.Contains(online, c) {
					return l, badLimit("limits.cpu", fmt.Errorf("cpu %d is not online on this host", c))
				}
			}

			l.CPUSet = formatCPUs(set)
			ncpu = len(set)
		}
	}

	allowance := config["limits.cpu.allowance"]
	if allowance != "" {
		l.CPUQuotaUs, l.CPUPeriodUs, err = parseAllowance(allowance, ncpu)
		if err != nil {
			return l, badLimit("limits.cpu.allowance", err)
		}
	}

	procs := config["limits.processes"]
	if procs != "" {
		l.PidsMax, err = strconv.ParseInt(procs, 10, 64)
		if err != nil || l.PidsMax <= 0 {
			return l, badLimit("limits.processes", fmt.Errorf("%q is not a positive integer", procs))
		}
	}

	return l, nil
}

func badLimit(key string, err error) error {
	return api.StatusErrorf(http.StatusBadRequest, "invalid config %q: %v", key, err)
}

// applyLimits writes limits to a running container's cgroups.
func (cf *Configurator) applyLimits(name string, l container.Limits) error {
	layout, err := cgroup.Detect()
	if err != nil {
		return err
	}

	layout.Parent = cf.parent

	g, err := cgroup.New(name, layout)
	if err != nil {
		return err
	}

	err = g.SetLimits(l)
	if err != nil {
		return fmt.Errorf("applying limits to %q: %w", name, err)
	}

	return nil
}

func memoryBytes(v string) (int64, error) {
	pct, ok := strings.CutSuffix(v, "%")
	if !ok {
		return ParseBytes(v)
	}

	p, err := strconv.ParseInt(pct, 10, 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, fmt.Errorf("%q is not a percentage between 1%% and 100%%", v)
	}

	total, err := sys.MemTotal()
	if err != nil {
		return 0, err
	}

	return total * p / 100, nil
}

var sliceRe = regexp.MustCompile(`^([0-9]+)ms/([0-9]+)ms$`)

// parseAllowance returns a CFS quota and period in microseconds.
func parseAllowance(v string, ncpu int) (int64, int64, error) {
	pct, ok := strings.CutSuffix(v, "%")
	if ok {
		p, err := strconv.ParseInt(pct, 10, 64)
		if err != nil || p <= 0 || p > 100 {
			return 0, 0, fmt.Errorf("%q is not a percentage between 1%% and 100%%", v)
		}

		const period = 100000
		return int64(ncpu) * period * p / 100, period, nil
	}

	m := sliceRe.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, fmt.Errorf("%q is not a percentage or a time slice like 25ms/100ms", v)
	}

	quota, _ := strconv.ParseInt(m[1], 10, 64)
	period, _ := strconv.ParseInt(m[2], 10, 64)
	// The kernel's bounds: period 1ms..1s, quota at least 1ms.
	if period < 1 || period > 1000 || quota < 1 {
		return 0, 0, fmt.Errorf("%q: the period must be 1ms to 1000ms and the quota at least 1ms", v)
	}

	return quota * 1000, period * 1000, nil
}

func formatCPUs(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}

	return strings.Join(parts, ",")
}

// pickCPUs chooses the n online CPUs that the fewest other pinned containers use (lowest
// number first on a tie), like LXD's balancing of limits.cpu counts. A container already
// pinned to n CPUs keeps them, so re-applying a config does not move it around.
func pickCPUs(name string, online []int, n int, parent string) []int {
	use := map[int]int{}
	var own []int
	for other, cpus := range cgroup.PinnedCPUs(parent) {
		if other == name {
			own = cpus
			continue
		}

		if len(cpus) < len(online) {
			for _, c := range cpus {
				use[c]++
			}
		}
	}

	if len(own) == n {
		return own
	}

	cands := append([]int(nil), online...)
	sort.SliceStable(cands, func(i, j int) bool { return use[cands[i]] < use[cands[j]] })
	out := append([]int(nil), cands[:n]...)
	sort.Ints(out)
	return out
}

// cgroupParent is the directory of this daemon's container cgroups.
func (cf *Configurator) cgroupParent() string {
	if cf.parent == "" {
		return cgroup.DefaultParent
	}

	return cf.parent
}
