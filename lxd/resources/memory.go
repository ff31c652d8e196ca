package resources

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// meminfo parses a meminfo file ("Key: value [kB]", or "Node N Key: value kB" per node)
// into bytes (counts, such as HugePages_Total, stay counts).
func meminfo(path string) map[string]uint64 {
	out := map[string]uint64{}
	data, err := readFile(path)
	if err != nil {
		return out
	}

	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}

		fields := strings.Fields(k)
		key := fields[len(fields)-1]
		vf := strings.Fields(v)
		if len(vf) == 0 {
			continue
		}

		n, err := strconv.ParseUint(vf[0], 10, 64)
		if err != nil {
			continue
		}

		if len(vf) > 1 && vf[1] == "kB" {
			n *= 1024
		}

		out[key] = n
	}

	return out
}

func (h Host) memory() (*api.ResourcesMemory, error) {
	m := meminfo(h.path("proc/meminfo"))
	total := m["MemTotal"]
	if total == 0 {
		return nil, fmt.Errorf("no MemTotal in %s", h.path("proc/meminfo"))
	}

	out := &api.ResourcesMemory{Total: total, Used: used(m), HugepagesSize: m["Hugepagesize"]}

	out.HugepagesTotal = m["HugePages_Total"] * out.HugepagesSize
	if free := m["HugePages_Free"]; free <= m["HugePages_Total"] {
		out.HugepagesUsed = (m["HugePages_Total"] - free) * out.HugepagesSize
	}

	base := h.path("sys/devices/system/node")
	for _, name := range list(base) {
		v, ok := strings.CutPrefix(name, "node")
		id, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			continue
		}

		nm := meminfo(filepath.Join(base, name, "meminfo"))
		node := api.ResourcesMemoryNode{NUMANode: id, Total: nm["MemTotal"], Used: used(nm)}

		node.HugepagesTotal = nm["HugePages_Total"] * out.HugepagesSize
		if free := nm["HugePages_Free"]; free <= nm["HugePages_Total"] {
			node.HugepagesUsed = (nm["HugePages_Total"] - free) * out.HugepagesSize
		}

		out.Nodes = append(out.Nodes, node)
	}

	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].NUMANode < out.Nodes[j].NUMANode })
	return out, nil
}

// used is the memory in use of a meminfo: what is neither free nor reclaimable (the page
// cache and reclaimable slab), computed the same way for the host and its NUMA nodes
// (whose meminfo has no MemAvailable).
func used(m map[string]uint64) uint64 {
	free := m["MemFree"] + m["Active(file)"] + m["Inactive(file)"] + m["SReclaimable"]
	if free >= m["MemTotal"] {
		return 0
	}

	return m["MemTotal"] - free
}
