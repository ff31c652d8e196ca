package resources

import (
	"os"
	"path/filepath"
	"testing"
)

// tree writes files (path → content) and symlinks (content starting with "->") under a
// temporary root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		err := os.MkdirAll(filepath.Dir(full), 0o755)
		if err != nil {
			t.Fatal(err)
		}

		if target, ok := cutArrow(c); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	return root
}

func cutArrow(s string) (string, bool) {
	if len(s) > 2 && s[:2] == "->" {
		return s[2:], true
	}

	return "", false
}

// TestHostFromFakeTree: two sockets, one with a hyperthreaded core, an offline and an
// isolated CPU; memory with hugepages and a NUMA node; a disk with a partition beside a
// loop device; a physical NIC beside a bridge.
func TestHostFromFakeTree(t *testing.T) {
	cpu := func(id, pkg, core string) map[string]string {
		d := "sys/devices/system/cpu/cpu" + id + "/"
		return map[string]string{
			d + "topology/physical_package_id": pkg, d + "topology/core_id": core, d + "topology/die_id": "0",
			d + "cpufreq/scaling_cur_freq": "2000000", d + "node0/x": "",
		}
	}

	files := map[string]string{
		"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t: fpu hypervisor\n\n" +
			"processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\n\nprocessor\t: 2\nvendor_id\t: GenuineIntel\nmodel name\t: Other CPU\n",
		"sys/devices/system/cpu/online":                  "0-1",
		"sys/devices/system/cpu/isolated":                "1",
		"sys/devices/system/cpu/cpu0/cache/index0/level": "1",
		"sys/devices/system/cpu/cpu0/cache/index0/type":  "Data",
		"sys/devices/system/cpu/cpu0/cache/index0/size":  "32K",
		"proc/meminfo":                          "MemTotal: 1000 kB\nMemFree: 100 kB\nActive(file): 100 kB\nInactive(file): 100 kB\nSReclaimable: 100 kB\nHugePages_Total: 4\nHugePages_Free: 1\nHugepagesize: 2048 kB\n",
		"sys/devices/system/node/node0/meminfo": "Node 0 MemTotal: 1000 kB\nNode 0 MemFree: 500 kB\nNode 0 HugePages_Total: 4\nNode 0 HugePages_Free: 1\n",
		"sys/class/block/sda/device/model":      "DISK",
		"sys/class/block/sda/size":              "2048",
		"sys/class/block/sda/dev":               "8:0",
		"sys/class/block/sda/ro":                "0",
		"sys/class/block/sda/sda1/partition":    "1",
		"sys/class/block/sda/sda1/size":         "1024",
		"sys/class/block/sda/sda1/dev":          "8:1",
		"sys/class/block/loop0/size":            "100",
		"sys/class/net/eth0/device/vendor":      "0x8086",
		"sys/class/net/eth0/address":            "00:11:22:33:44:55",
		"sys/class/net/eth0/carrier":            "1",
		"sys/class/net/eth0/speed":              "1000",
		"sys/class/net/eth0/duplex":             "full",
		"sys/class/net/br0/address":             "00:11:22:33:44:66",
		"sys/class/dmi/id/sys_vendor":           "Vendor",
		"sys/class/dmi/id/product_name":         "Box",
	}

	for id, c := range map[string][2]string{"0": {"0", "0"}, "1": {"0", "0"}, "2": {"1", "0"}} {
		for k, v := range cpu(id, c[0], c[1]) {
			files[k] = v
		}
	}

	r, err := Host{Root: tree(t, files), Arch: "x86_64"}.Get()
	if err != nil {
		t.Fatal(err)
	}

	if r.CPU.Total != 3 || len(r.CPU.Sockets) != 2 {
		t.Fatalf("cpu: %+v", r.CPU)
	}

	s0 := r.CPU.Sockets[0]
	if s0.Vendor != "GenuineIntel" || s0.Name != "Test CPU" || len(s0.Cores) != 1 || len(s0.Cores[0].Threads) != 2 || s0.Frequency != 2000 {
		t.Fatalf("socket 0: %+v", s0)
	}

	th := s0.Cores[0].Threads
	if th[0].ID != 0 || th[1].ID != 1 || th[1].Thread != 1 || !th[1].Isolated || th[0].Isolated || !th[0].Online {
		t.Fatalf("threads: %+v", th)
	}

	if off := r.CPU.Sockets[1].Cores[0].Threads[0]; off.Online || off.ID != 2 {
		t.Fatalf("offline cpu 2: %+v", off)
	}

	if len(s0.Cache) != 1 || s0.Cache[0].Size != 32768 {
		t.Fatalf("cache: %+v", s0.Cache)
	}

	m := r.Memory
	if m.Total != 1000*1024 || m.Used != 600*1024 || m.HugepagesSize != 2<<20 || m.HugepagesTotal != 4*(2<<20) || m.HugepagesUsed != 3*(2<<20) {
		t.Fatalf("memory: %+v", m)
	}

	if len(m.Nodes) != 1 || m.Nodes[0].Used != 500*1024 {
		t.Fatalf("nodes: %+v", m.Nodes)
	}

	if r.Storage.Total != 1 || r.Storage.Disks[0].Size != 2048*512 || r.Storage.Disks[0].Type != "scsi" ||
		len(r.Storage.Disks[0].Partitions) != 1 || r.Storage.Disks[0].Partitions[0].Size != 1024*512 {
		t.Fatalf("storage: %+v", r.Storage)
	}

	if r.Network.Total != 1 || r.Network.Cards[0].Ports[0].ID != "eth0" || r.Network.Cards[0].Ports[0].LinkSpeed != 1000 ||
		r.Network.Cards[0].VendorID != "8086" || !r.Network.Cards[0].Ports[0].LinkDetected {
		t.Fatalf("network: %+v", r.Network)
	}

	if r.System.Vendor != "Vendor" || r.System.Product != "Box" || r.System.Type != "virtual-machine" {
		t.Fatalf("system: %+v", r.System)
	}
}

// TestHostWithoutCPUs: a tree that says nothing is an error, not an empty answer.
func TestHostWithoutCPUs(t *testing.T) {
	_, err := Host{Root: t.TempDir()}.Get()
	if err == nil {
		t.Fatal("no error for an empty tree")
	}
}

// TestHostReal: this host is described with at least one CPU, its memory and no
// impossible numbers.
func TestHostReal(t *testing.T) {
	r, err := Host{Root: "/", Arch: "x86_64"}.Get()
	if err != nil {
		t.Fatal(err)
	}

	if r.CPU.Total == 0 || r.Memory.Total == 0 || r.Memory.Used > r.Memory.Total {
		t.Fatalf("host: cpu %+v memory %+v", r.CPU, r.Memory)
	}
}
