package cgroup

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/sys"
)

// ReadStats on a hybrid host reads the v1 controllers; processes are pids.current.
func TestReadStatsV1(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"memory/p/c/memory.usage_in_bytes": "20000\n",
		"cpuacct/p/c/cpuacct.usage":        "1750000000\n",
		"pids/p/c/pids.current":            "17\n",
	})

	l := Layout{Mode: sys.CgroupHybrid, Parent: "p", V1: map[string]string{}}
	for _, c := range []string{"memory", "cpuacct", "pids"} {
		l.V1[c] = filepath.Join(root, c)
	}

	s, err := l.ReadStats("c")
	if err != nil {
		t.Fatal(err)
	}

	want := Stats{Processes: 17, Pids: 17, CPUNanos: 1750000000, MemoryBytes: 20000}
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}

	_, err = l.ReadStats("gone")
	if !errors.Is(err, ErrGone) {
		t.Fatalf("stats of a missing group: %v, want ErrGone", err)
	}
}

func TestReadStatsV2(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"p/c/cpu.stat":       "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 0\n",
		"p/c/memory.current": "20000\n",
		"p/c/pids.current":   "5\n",
		// Without the memory and pids controllers enabled only cpu.stat is there.
		"p/bare/cpu.stat": "usage_usec 7\n",
	})

	l := Layout{Mode: sys.CgroupUnified, Unified: root, Parent: "p"}
	s, err := l.ReadStats("c")
	if err != nil {
		t.Fatal(err)
	}

	want := Stats{Processes: 5, Pids: 5, CPUNanos: 3000000000, MemoryBytes: 20000}
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}

	s, err = l.ReadStats("bare")
	if err != nil || s.CPUNanos != 7000 || s.Processes != -1 || s.MemoryBytes != 0 {
		t.Fatalf("stats without controllers: %+v %v", s, err)
	}

	_, err = l.ReadStats("gone")
	if !errors.Is(err, ErrGone) {
		t.Fatalf("stats of a missing group: %v, want ErrGone", err)
	}
}
