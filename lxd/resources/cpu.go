package resources

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/api"
)

// cpuinfo is what /proc/cpuinfo says of one logical CPU.
type cpuinfo struct {
	vendor, name string
}

func (h Host) readCPUInfo() map[int64]cpuinfo {
	out := map[int64]cpuinfo{}
	data, err := readFile(h.path("proc/cpuinfo"))
	if err != nil {
		return out
	}

	cur := int64(-1)
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}

		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				cur = n
			}
		case "vendor_id", "CPU implementer":
			ci := out[cur]
			ci.vendor = v
			out[cur] = ci
		case "model name", "cpu model":
			ci := out[cur]
			ci.name = v
			out[cur] = ci
		}
	}

	return out
}

// cpu groups the logical CPUs of /sys/devices/system/cpu by package, then core.
func (h Host) cpu() (*api.ResourcesCPU, error) {
	base := h.path("sys/devices/system/cpu")
	info := h.readCPUInfo()
	isolated := map[int]bool{}
	ids, err := sys.ParseCPUList(readString(filepath.Join(base, "isolated")))
	if err == nil {
		for _, id := range ids {
			isolated[id] = true
		}
	}

	online := map[int]bool{}
	ids, err = sys.ParseCPUList(readString(filepath.Join(base, "online")))
	if err == nil {
		for _, id := range ids {
			online[id] = true
		}
	}

	sockets := map[uint64]*api.ResourcesCPUSocket{}
	cores := map[[2]uint64]*api.ResourcesCPUCore{}
	total := uint64(0)
	ids64 := []int64{}
	for _, name := range list(base) {
		idStr, ok := strings.CutPrefix(name, "cpu")
		id, err := strconv.ParseInt(idStr, 10, 64)
		if ok && err == nil {
			ids64 = append(ids64, id)
		}
	}

	sort.Slice(ids64, func(i, j int) bool { return ids64[i] < ids64[j] })
	for _, id := range ids64 {
		dir := filepath.Join(base, "cpu"+strconv.FormatInt(id, 10))
		topo := filepath.Join(dir, "topology")
		pkg, _ := readUint(filepath.Join(topo, "physical_package_id"))
		coreID, _ := readUint(filepath.Join(topo, "core_id"))
		die, _ := readUint(filepath.Join(topo, "die_id"))
		if _, ok := sockets[pkg]; !ok {
			sock := &api.ResourcesCPUSocket{Socket: pkg, Vendor: info[id].vendor, Name: info[id].name, Cache: caches(dir)}
			sock.FrequencyMinimum = khzToMHz(filepath.Join(dir, "cpufreq", "cpuinfo_min_freq"))
			sock.FrequencyTurbo = khzToMHz(filepath.Join(dir, "cpufreq", "cpuinfo_max_freq"))
			sockets[pkg] = sock
		}

		key := [2]uint64{pkg, coreID}
		core, ok := cores[key]
		if !ok {
			core = &api.ResourcesCPUCore{Core: coreID, Die: die, Threads: []api.ResourcesCPUThread{}}
			core.Frequency = khzToMHz(filepath.Join(dir, "cpufreq", "scaling_cur_freq"))
			cores[key] = core
		}

		// cpu0 often has no "online" file: it cannot be taken offline.
		on := online[int(id)]
		core.Threads = append(core.Threads, api.ResourcesCPUThread{
			ID: id, NUMANode: cpuNode(dir), Thread: uint64(len(core.Threads)), Online: on, Isolated: isolated[int(id)],
		})
		total++
	}

	out := &api.ResourcesCPU{Architecture: h.Arch, Sockets: []api.ResourcesCPUSocket{}, Total: total}
	for key, core := range cores {
		sort.Slice(core.Threads, func(i, j int) bool { return core.Threads[i].ID < core.Threads[j].ID })
		for i := range core.Threads {
			core.Threads[i].Thread = uint64(i)
		}

		sockets[key[0]].Cores = append(sockets[key[0]].Cores, *core)
	}

	for _, s := range sockets {
		sort.Slice(s.Cores, func(i, j int) bool { return s.Cores[i].Core < s.Cores[j].Core })
		var sum, n uint64
		for _, c := range s.Cores {
			if c.Frequency > 0 {
				sum += c.Frequency
				n++
			}
		}

		if n > 0 {
			s.Frequency = sum / n
		}

		out.Sockets = append(out.Sockets, *s)
	}

	sort.Slice(out.Sockets, func(i, j int) bool { return out.Sockets[i].Socket < out.Sockets[j].Socket })
	if total == 0 {
		return nil, fmt.Errorf("no CPU found under %s", base)
	}

	return out, nil
}

// cpuNode is the NUMA node of a logical CPU (its nodeN link).
func cpuNode(dir string) uint64 {
	for _, n := range list(dir) {
		v, ok := strings.CutPrefix(n, "node")
		id, err := strconv.ParseUint(v, 10, 64)
		if ok && err == nil {
			return id
		}
	}

	return 0
}

// caches lists a CPU's caches (cache/indexN).
func caches(dir string) []api.ResourcesCPUCache {
	out := []api.ResourcesCPUCache{}
	cdir := filepath.Join(dir, "cache")
	names := list(cdir)
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "index") {
			continue
		}

		level, _ := readUint(filepath.Join(cdir, n, "level"))
		size := parseSize(readString(filepath.Join(cdir, n, "size")))
		out = append(out, api.ResourcesCPUCache{Level: level, Type: readString(filepath.Join(cdir, n, "type")), Size: size})
	}

	return out
}

// parseSize reads sysfs cache sizes ("32K", "1024K", "16M").
func parseSize(s string) uint64 {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1024, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1024*1024, strings.TrimSuffix(s, "M")
	}

	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}

	return v * mult
}

// khzToMHz reads a cpufreq value (kHz) as MHz; 0 when absent.
func khzToMHz(path string) uint64 {
	v, _ := readUint(path)
	return v / 1000
}
