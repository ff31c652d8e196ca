package metrics

import (
	"strings"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/ip"
)

// Instance is what the collector needs to know of one instance.
type Instance struct {
	Name string
	// Status is the API's status ("Running", "Frozen", "Stopped", ...). Running and
	// frozen instances get resource metrics; every instance is counted.
	Status string
	// NICs are its network devices with the host end of their veth.
	NICs []NIC
	// RootFS is the host path of its mounted root filesystem, "" to leave it out.
	RootFS string
}

// NIC is one network device of an instance.
type NIC struct {
	Device   string // interface name inside the instance: the "device" label, as in LXD
	HostName string // host end of the veth, whose counters are read
}

// active says whether an instance has processes to account.
func (i Instance) active() bool { return i.Status == "Running" || i.Status == "Frozen" }

// reading is what one collection read of one active instance.
type reading struct {
	inst  Instance
	usage cgroup.Usage
	fs    *fsStat // nil when the root filesystem could not be read
}

// fsStat is statfs(2) of a root filesystem, labelled by its mount's source and type.
type fsStat struct {
	device, fstype    string
	size, free, avail uint64
}

// The project and type labels of every instance sample: Berth has one project and
// runs containers only.
const (
	project      = "default"
	instanceType = "container"
)

func instanceLabels(name string, extra ...Label) []Label {
	return append(extra, L("name", name), L("project", project), L("type", instanceType))
}

// memoryMetrics maps the keys of cgroup.Usage.Memory to LXD's metric names and help.
var memoryMetrics = []struct{ key, name, help string }{
	{"active_anon", "lxd_memory_Active_anon_bytes", "The amount of anonymous memory on active LRU list."},
	{"active_file", "lxd_memory_Active_file_bytes", "The amount of file-backed memory on active LRU list."},
	{"active", "lxd_memory_Active_bytes", "The amount of memory on active LRU list."},
	{"cache", "lxd_memory_Cached_bytes", "The amount of cached memory."},
	{"dirty", "lxd_memory_Dirty_bytes", "The amount of memory waiting to get written back to the disk."},
	{"inactive_anon", "lxd_memory_Inactive_anon_bytes", "The amount of anonymous memory on inactive LRU list."},
	{"inactive_file", "lxd_memory_Inactive_file_bytes", "The amount of file-backed memory on inactive LRU list."},
	{"inactive", "lxd_memory_Inactive_bytes", "The amount of memory on inactive LRU list."},
	{"mapped", "lxd_memory_Mapped_bytes", "The amount of mapped memory."},
	{"rss", "lxd_memory_RSS_bytes", "The amount of anonymous and swap cache memory."},
	{"shmem", "lxd_memory_Shmem_bytes", "The amount of cached filesystem data that is swap-backed."},
	{"slab_reclaimable", "lxd_memory_SReclaimable_bytes", "The amount of reclaimable kernel memory (slab)."},
	{"unevictable", "lxd_memory_Unevictable_bytes", "The amount of unevictable memory."},
	{"writeback", "lxd_memory_Writeback_bytes", "The amount of memory queued for syncing to disk."},
}

// addInstance adds the samples of one active instance to set. hostMem is the host's
// memory (the MemTotal of an instance without a lower limit), links the host's link
// counters and partitions the block device names by "major:minor".
func addInstance(set *Set, r *reading, hostMem int64, links map[string]ip.Counters, partitions map[string]string) {
	name := r.inst.Name
	u := &r.usage

	cpu := set.Family("lxd_cpu_seconds_total", Counter, "The total number of CPU time used in seconds.")
	for _, c := range u.CPU {
		id := itoa(c.CPU)
		cpu.Add(float64(c.System)/1e9, instanceLabels(name, L("cpu", id), L("mode", "system"))...)
		cpu.Add(float64(c.User)/1e9, instanceLabels(name, L("cpu", id), L("mode", "user"))...)
	}

	if u.CPUs > 0 {
		set.Family("lxd_cpu_effective_total", Gauge, "The total number of effective CPUs.").Add(float64(u.CPUs), instanceLabels(name)...)
	}

	addDisks(set, name, u.IO, partitions)
	addFilesystem(set, name, r.fs)
	addMemory(set, name, u, hostMem)
	addNetwork(set, name, r.inst.NICs, links)

	if u.Tasks >= 0 {
		set.Family("lxd_procs_total", Gauge, "The number of running processes.").Add(float64(u.Tasks), instanceLabels(name)...)
	}
}

func addDisks(set *Set, name string, io map[string]cgroup.IOStat, partitions map[string]string) {
	if len(io) == 0 {
		return
	}

	rb := set.Family("lxd_disk_read_bytes_total", Counter, "The total number of bytes read.")
	rc := set.Family("lxd_disk_reads_completed_total", Counter, "The total number of completed reads.")
	wb := set.Family("lxd_disk_written_bytes_total", Counter, "The total number of bytes written.")
	wc := set.Family("lxd_disk_writes_completed_total", Counter, "The total number of completed writes.")

	for _, dev := range sortedKeys(io) {
		s := io[dev]
		label := partitions[dev]
		if label == "" {
			label = dev
		}

		labels := instanceLabels(name, L("device", label))
		rb.Add(float64(s.ReadBytes), labels...)
		rc.Add(float64(s.Reads), labels...)
		wb.Add(float64(s.WrittenBytes), labels...)
		wc.Add(float64(s.Writes), labels...)
	}
}

func addFilesystem(set *Set, name string, fs *fsStat) {
	if fs == nil {
		return
	}

	labels := instanceLabels(name, L("device", fs.device), L("fstype", fs.fstype), L("mountpoint", "/"))
	set.Family("lxd_filesystem_avail_bytes", Gauge, "The number of available space in bytes.").Add(float64(fs.avail), labels...)
	set.Family("lxd_filesystem_free_bytes", Gauge, "The number of free space in bytes.").Add(float64(fs.free), labels...)
	set.Family("lxd_filesystem_size_bytes", Gauge, "The size of the filesystem in bytes.").Add(float64(fs.size), labels...)
}

// addMemory adds memory.stat's figures and LXD's /proc/meminfo-like view of the
// instance: MemTotal is its limit (the host's memory without one), MemFree what it may
// still be charged, MemAvailable that plus what the kernel can reclaim (page cache and
// reclaimable slab).
func addMemory(set *Set, name string, u *cgroup.Usage, hostMem int64) {
	labels := instanceLabels(name)
	for _, m := range memoryMetrics {
		v, ok := u.Memory[m.key]
		if ok {
			set.Family(m.name, Gauge, m.help).Add(float64(v), labels...)
		}
	}

	total := hostMem
	if u.MemoryLimit > 0 && (total <= 0 || u.MemoryLimit < total) {
		total = u.MemoryLimit
	}

	if total > 0 && u.MemoryUsage >= 0 {
		free := max(total-u.MemoryUsage, 0)
		avail := min(free+int64(u.Memory["cache"]+u.Memory["slab_reclaimable"]), total)
		set.Family("lxd_memory_MemAvailable_bytes", Gauge, "The amount of available memory.").Add(float64(avail), labels...)
		set.Family("lxd_memory_MemFree_bytes", Gauge, "The amount of free memory.").Add(float64(free), labels...)
		set.Family("lxd_memory_MemTotal_bytes", Gauge, "The amount of used memory.").Add(float64(total), labels...)
	}

	if u.Swap >= 0 {
		set.Family("lxd_memory_Swap_bytes", Gauge, "The amount of used swap memory.").Add(float64(u.Swap), labels...)
	}

	if u.Memory != nil && u.MemoryUsage >= 0 {
		set.Family("lxd_memory_OOM_kills_total", Counter, "The number of out of memory kills.").Add(float64(u.OOMKills), labels...)
	}
}

// addNetwork adds the counters of each NIC, read on its host end and turned around: the
// host end receives what the instance sends. Reading the host end needs no entry into the
// instance's network namespace, and what root inside does to its interfaces (renaming,
// adding thousands) changes nothing here.
func addNetwork(set *Set, name string, nics []NIC, links map[string]ip.Counters) {
	for _, n := range nics {
		host, ok := links[n.HostName]
		if !ok || n.HostName == "" {
			continue
		}

		c := host.Swapped()
		labels := instanceLabels(name, L("device", n.Device))
		set.Family("lxd_network_receive_bytes_total", Counter, "The amount of received bytes on a given interface.").Add(float64(c.RxBytes), labels...)
		set.Family("lxd_network_receive_drop_total", Counter, "The amount of received dropped bytes on a given interface.").Add(float64(c.RxDropped), labels...)
		set.Family("lxd_network_receive_errs_total", Counter, "The amount of received errors on a given interface.").Add(float64(c.RxErrors), labels...)
		set.Family("lxd_network_receive_packets_total", Counter, "The amount of received packets on a given interface.").Add(float64(c.RxPackets), labels...)
		set.Family("lxd_network_transmit_bytes_total", Counter, "The amount of transmitted bytes on a given interface.").Add(float64(c.TxBytes), labels...)
		set.Family("lxd_network_transmit_drop_total", Counter, "The amount of transmitted dropped bytes on a given interface.").Add(float64(c.TxDropped), labels...)
		set.Family("lxd_network_transmit_errs_total", Counter, "The amount of transmitted errors on a given interface.").Add(float64(c.TxErrors), labels...)
		set.Family("lxd_network_transmit_packets_total", Counter, "The amount of transmitted packets on a given interface.").Add(float64(c.TxPackets), labels...)
	}
}

// addCounts adds the number of instances (LXD's lxd_instances) and how many are in each
// status.
func addCounts(set *Set, insts []Instance) {
	byState := map[string]int{"running": 0, "stopped": 0, "frozen": 0}
	for _, i := range insts {
		byState[strings.ToLower(i.Status)]++
	}

	set.Family("lxd_instances", Gauge, "The number of instances.").Add(float64(len(insts)), L("project", project), L("type", instanceType))

	f := set.Family("lxd_instances_by_state", Gauge, "The number of instances in each state.")
	for _, s := range sortedKeys(byState) {
		f.Add(float64(byState[s]), L("project", project), L("state", s), L("type", instanceType))
	}
}
