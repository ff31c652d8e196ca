package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/sys"
)

// writeTree writes files (path relative to root -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		err := os.MkdirAll(filepath.Dir(full), 0o755)
		if err != nil {
			t.Fatal(err)
		}

		err = os.WriteFile(full, []byte(content), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The v1 files as a 6.x kernel writes them on a hybrid host (cpu and cpuacct in separate
// hierarchies, as here).
func TestReadUsageV1(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"memory/p/c/memory.stat": "cache 100\nrss 200\ntotal_cache 4096\ntotal_rss 8192\ntotal_shmem 512\n" +
			"total_mapped_file 1024\ntotal_dirty 12\ntotal_writeback 0\ntotal_active_anon 3000\n" +
			"total_inactive_anon 5000\ntotal_active_file 1000\ntotal_inactive_file 3096\ntotal_unevictable 7\n" +
			"hierarchical_memory_limit 9223372036854771712\n",
		"memory/p/c/memory.usage_in_bytes":       "20000\n",
		"memory/p/c/memory.memsw.usage_in_bytes": "20480\n",
		"memory/p/c/memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
		"cpuacct/p/c/cpuacct.usage_all":          "cpu user system\n0 1500000000 250000000\n1 500000000 0\n",
		"cpuset/p/c/cpuset.effective_cpus":       "0-1\n",
		"cpu/p/c/cpu.cfs_quota_us":               "-1\n",
		"cpu/p/c/cpu.cfs_period_us":              "100000\n",
		"blkio/p/c/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n" +
			"7:1 Read 99\nTotal 12288\n",
		"blkio/p/c/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\n7:1 Read 5\nTotal 3\n",
		"pids/p/c/pids.current":                          "17\n",
	})

	l := Layout{Mode: sys.CgroupHybrid, Parent: "p", V1: map[string]string{}}
	for _, c := range []string{"memory", "cpuacct", "cpuset", "cpu", "blkio", "pids"} {
		l.V1[c] = filepath.Join(root, c)
	}

	u, err := l.ReadUsage("c")
	if err != nil {
		t.Fatal(err)
	}

	wantMem := map[string]uint64{
		"cache": 4096, "rss": 8192, "shmem": 512, "mapped": 1024, "dirty": 12, "writeback": 0,
		"active_anon": 3000, "inactive_anon": 5000, "active_file": 1000, "inactive_file": 3096,
		"unevictable": 7, "active": 4000, "inactive": 8096,
	}
	if !reflect.DeepEqual(u.Memory, wantMem) {
		t.Errorf("memory: got %v, want %v", u.Memory, wantMem)
	}

	if u.MemoryUsage != 20000 || u.MemoryLimit != -1 || u.Swap != 480 || u.OOMKills != 3 {
		t.Errorf("usage %d limit %d swap %d oom %d; want 20000 -1 480 3", u.MemoryUsage, u.MemoryLimit, u.Swap, u.OOMKills)
	}

	wantCPU := []CPUTime{{CPU: 0, User: 1500000000, System: 250000000}, {CPU: 1, User: 500000000}}
	if !reflect.DeepEqual(u.CPU, wantCPU) || u.CPUs != 2 {
		t.Errorf("cpu: got %v (%d CPUs), want %v (2)", u.CPU, u.CPUs, wantCPU)
	}

	wantIO := map[string]IOStat{"8:0": {ReadBytes: 4096, WrittenBytes: 8192, Reads: 1, Writes: 2}}
	if !reflect.DeepEqual(u.IO, wantIO) {
		t.Errorf("io: got %v, want %v (loop devices and totals left out)", u.IO, wantIO)
	}

	if u.Tasks != 17 {
		t.Errorf("tasks: got %d, want 17", u.Tasks)
	}

	// A quota of 1.5 CPUs is 2 whole CPUs; a limit below the host's memory is kept.
	writeTree(t, root, map[string]string{
		"cpu/p/c/cpu.cfs_quota_us":         "150000\n",
		"cpuset/p/c/cpuset.effective_cpus": "0-3\n",
	})
	stat, _ := os.ReadFile(filepath.Join(root, "memory/p/c/memory.stat"))
	writeTree(t, root, map[string]string{
		"memory/p/c/memory.stat": strings.Replace(string(stat), "9223372036854771712", "536870912", 1),
	})

	u, err = l.ReadUsage("c")
	if err != nil || u.CPUs != 2 || u.MemoryLimit != 536870912 {
		t.Errorf("with limits: %d CPUs, limit %d, %v; want 2, 536870912", u.CPUs, u.MemoryLimit, err)
	}

	_, err = l.ReadUsage("gone")
	if !errors.Is(err, ErrGone) {
		t.Errorf("a missing group: got %v, want ErrGone", err)
	}
}

// The cgroup2 files as a 6.x kernel writes them (trimmed of keys the metrics ignore).
func TestReadUsageV2(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"p/c/cpu.stat": "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 0\n" +
			"nr_throttled 0\nthrottled_usec 0\n",
		"p/c/memory.stat": "anon 8192\nfile 4096\nkernel 300\nshmem 512\nfile_mapped 1024\nfile_dirty 12\n" +
			"file_writeback 4\nanon_thp 0\ninactive_anon 5000\nactive_anon 3000\ninactive_file 3096\n" +
			"active_file 1000\nunevictable 7\nslab_reclaimable 64\nslab_unreclaimable 32\n",
		"p/c/memory.current":        "20000\n",
		"p/c/memory.max":            "max\n",
		"p/c/memory.swap.current":   "0\n",
		"p/c/memory.events":         "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n",
		"p/c/cpuset.cpus.effective": "0-7\n",
		"p/c/cpu.max":               "200000 100000\n",
		"p/c/io.stat":               "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n7:0 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n",
		"p/c/pids.current":          "5\n",
	})

	l := Layout{Mode: sys.CgroupUnified, Unified: root, Parent: "p"}

	u, err := l.ReadUsage("c")
	if err != nil {
		t.Fatal(err)
	}

	wantMem := map[string]uint64{
		"cache": 4096, "rss": 8192, "shmem": 512, "mapped": 1024, "dirty": 12, "writeback": 4,
		"active_anon": 3000, "inactive_anon": 5000, "active_file": 1000, "inactive_file": 3096,
		"unevictable": 7, "slab_reclaimable": 64, "active": 4000, "inactive": 8096,
	}
	if !reflect.DeepEqual(u.Memory, wantMem) {
		t.Errorf("memory: got %v, want %v", u.Memory, wantMem)
	}

	if u.MemoryUsage != 20000 || u.MemoryLimit != -1 || u.Swap != 0 || u.OOMKills != 1 {
		t.Errorf("usage %d limit %d swap %d oom %d; want 20000 -1 0 1", u.MemoryUsage, u.MemoryLimit, u.Swap, u.OOMKills)
	}

	wantCPU := []CPUTime{{CPU: 0, User: 2000000000, System: 1000000000}}
	if !reflect.DeepEqual(u.CPU, wantCPU) || u.CPUs != 2 {
		t.Errorf("cpu: got %v (%d CPUs), want %v (2: the quota)", u.CPU, u.CPUs, wantCPU)
	}

	wantIO := map[string]IOStat{"8:0": {ReadBytes: 4096, WrittenBytes: 8192, Reads: 1, Writes: 2}}
	if !reflect.DeepEqual(u.IO, wantIO) || u.Tasks != 5 {
		t.Errorf("io %v tasks %d; want %v 5", u.IO, u.Tasks, wantIO)
	}

	// Without the memory, cpuset, io and pids controllers (a hybrid host's unified tree)
	// only the CPU time is known, and the rest says unknown rather than zero.
	bare := t.TempDir()
	writeTree(t, bare, map[string]string{"p/c/cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\n"})

	u, err = Layout{Mode: sys.CgroupUnified, Unified: bare, Parent: "p"}.ReadUsage("c")
	if err != nil || u.MemoryUsage != -1 || u.Tasks != -1 || u.CPUs != 0 || len(u.IO) != 0 {
		t.Errorf("bare group: %+v, %v", u, err)
	}

	_, err = l.ReadUsage("gone")
	if !errors.Is(err, ErrGone) {
		t.Errorf("a missing group: got %v, want ErrGone", err)
	}
}
