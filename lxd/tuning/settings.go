package tuning

// Setting is one kernel limit and the value berthd raises it to.
type Setting struct {
	Key   string // dotted sysctl name: "fs.inotify.max_user_instances"
	Value int64  // raised to this when below; never lowered
}

// Settings are the limits berthd raises, with LXD's production values where its
// production-setup page lists one (doc/host-tuning.md gives the reasons).
var Settings = []Setting{
	// Since Linux 5.11 a container's instances and watches are charged up the user
	// namespace hierarchy to root, who created its user namespace: every container's
	// systemd shares root's budget, and a systemd that gets none exits at boot.
	{"fs.inotify.max_user_instances", 1048576},
	{"fs.inotify.max_user_watches", 1048576},
	// Per host uid; each container's root is one, and systemd makes a keyring per service.
	{"kernel.keys.maxkeys", 2000},
	{"kernel.keys.maxbytes", 2000000},
	// Global: every container's devpts and consoles draw from one count.
	{"kernel.pty.max", 65536},
	// Per process, global setting: databases and JVMs inside need more maps.
	{"vm.max_map_count", 262144},
	// One neighbour table per family for all network namespaces: the bridge's entry for
	// every container plus each container's own.
	{"net.ipv4.neigh.default.gc_thresh1", 1024},
	{"net.ipv4.neigh.default.gc_thresh2", 4096},
	{"net.ipv4.neigh.default.gc_thresh3", 8192},
	{"net.ipv6.neigh.default.gc_thresh1", 1024},
	{"net.ipv6.neigh.default.gc_thresh2", 4096},
	{"net.ipv6.neigh.default.gc_thresh3", 8192},
	// Global: every container's seccomp filters are JIT-compiled against it.
	{"net.core.bpf_jit_limit", 1000000000},
	{"fs.aio-max-nr", 524288},
	// Global pid space for every container's processes and threads; systemd's own
	// default on 64-bit hosts.
	{"kernel.pid_max", 4194304},
}

// NofileTarget is the RLIMIT_NOFILE berthd raises itself to (capped by fs.nr_open).
const NofileTarget = 1048576
