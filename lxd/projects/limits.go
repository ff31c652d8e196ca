package projects

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Use is what one instance of a project takes against its limits: its expanded config
// and the size of its root disk (-1 when it has none).
type Use struct {
	Name     string // its name in the project
	Config   map[string]string
	RootSize int64

	// Volume marks a custom volume of the project: it counts against limits.disk (its
	// size, in RootSize) and nothing else, as in LXD.
	Volume bool
}

// Resource is LXD's ProjectStateResource: Limit is -1 when there is none. LXD's type has
// no JSON tags, so the fields go out capitalised.
type Resource struct {
	Limit int64
	Usage int64
}

// aggregate limits: what one instance adds for each of them. A project with the limit
// set requires each instance to set the key (directly or through a profile), as LXD.
var aggregates = []struct {
	limit string
	of    func(u Use) (int64, error)
}{
	{LimitCPU, func(u Use) (int64, error) { return cpuCount(u.Config["limits.cpu"]) }},
	{LimitMemory, func(u Use) (int64, error) { return memoryBytes(u.Config["limits.memory"]) }},
	{LimitProcesses, func(u Use) (int64, error) { return parseCount(u.Config["limits.processes"]) }},
	{LimitDisk, func(u Use) (int64, error) { return u.RootSize, nil }},
}

// Tally sums what uses take, for each of the project's limits: instances, containers,
// cpu, memory, processes, disk. An instance that leaves out a key its project limits is
// a 400 naming it and the key.
func Tally(cfg map[string]string, uses []Use) (map[string]Resource, error) {
	return tally(cfg, uses, true)
}

// tally is Tally; a lenient one skips what it cannot count (for the state of a project
// whose limits were set before an instance's keys were checked against them).
func tally(cfg map[string]string, uses []Use, strict bool) (map[string]Resource, error) {
	out := map[string]Resource{}
	var n int64
	for _, u := range uses {
		if !u.Volume {
			n++
		}
	}

	for _, k := range []string{LimitInstances, LimitContainers} {
		lim, err := parseCount(cfg[k])
		if err != nil {
			return nil, err
		}

		out[strings.TrimPrefix(k, "limits.")] = Resource{Limit: lim, Usage: n}
	}

	for _, a := range aggregates {
		lim, err := limitOf(a.limit, cfg[a.limit])
		if err != nil {
			return nil, err
		}

		var sum int64
		for _, u := range uses {
			if u.Volume && a.limit != LimitDisk {
				continue
			}

			v, err := a.of(u)
			if err != nil && (lim < 0 || !strict) {
				continue // not limited: nothing to count it against
			}

			if err != nil {
				return nil, api.StatusErrorf(http.StatusBadRequest, "instance %q: %s: %v", u.Name, strings.TrimPrefix(a.limit, "limits."), err)
			}

			if v < 0 {
				if lim >= 0 && strict && u.Volume {
					return nil, api.StatusErrorf(http.StatusBadRequest, "storage volume %q sets no size, which its project limits (%s=%s)",
						u.Name, a.limit, cfg[a.limit])
				}

				if lim >= 0 && strict {
					return nil, api.StatusErrorf(http.StatusBadRequest, "instance %q sets no %s, which its project limits (%s=%s)",
						u.Name, keyOf(a.limit), a.limit, cfg[a.limit])
				}

				continue
			}

			sum += v
		}

		out[strings.TrimPrefix(a.limit, "limits.")] = Resource{Limit: lim, Usage: sum}
	}

	return out, nil
}

// keyOf is the instance key behind a project limit.
func keyOf(limit string) string {
	if limit == LimitDisk {
		return "root disk size"
	}

	return limit
}

func limitOf(key, v string) (int64, error) {
	if key == LimitMemory || key == LimitDisk {
		return parseBytes(v)
	}

	return parseCount(v)
}

// Check is the 400 when uses exceed any of proj's limits, naming the limit, the use and
// what the change would make it.
func Check(proj string, cfg map[string]string, uses []Use) error {
	tally, err := Tally(cfg, uses)
	if err != nil {
		return err
	}

	names := make([]string, 0, len(tally))
	for k := range tally {
		names = append(names, k)
	}

	sort.Strings(names)
	for _, k := range names {
		r := tally[k]
		if r.Limit >= 0 && r.Usage > r.Limit {
			return api.StatusErrorf(http.StatusBadRequest, "project %q: limits.%s=%s would be exceeded: %s in use after this change",
				proj, k, cfg["limits."+k], show(k, r.Usage))
		}
	}

	return nil
}

func show(k string, v int64) string {
	if k == "memory" || k == "disk" {
		return strconv.FormatInt(v, 10) + " bytes"
	}

	return strconv.FormatInt(v, 10)
}

// cpuCount is what limits.cpu takes of a project's limits.cpu: a count, or the number of
// CPUs of a set such as "0-1,4"; -1 when unset.
func cpuCount(v string) (int64, error) {
	if v == "" {
		return -1, nil
	}

	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q is not a CPU count", v)
		}

		return n, nil
	}

	var count int64
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(lo, 10, 32)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU count or set", v)
		}

		b := a
		if isRange {
			b, err = strconv.ParseInt(hi, 10, 32)
			if err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU count or set", v)
			}
		}

		count += b - a + 1
	}

	return count, nil
}

// memoryBytes is what limits.memory takes; a percentage of the host cannot be summed
// against a project's limit (LXD refuses it too); -1 when unset.
func memoryBytes(v string) (int64, error) {
	if strings.HasSuffix(v, "%") {
		return 0, fmt.Errorf("%q is a percentage, which a project's limits.memory cannot count", v)
	}

	return parseBytes(v)
}
