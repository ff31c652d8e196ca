package idmap

import (
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func nsInode(t *testing.T, fd uintptr) uint64 {
	t.Helper()

	var st unix.Stat_t
	err := unix.Fstat(int(fd), &st)
	if err != nil {
		t.Fatal(err)
	}

	return st.Ino
}

// TestSharedUserns checks that one map's namespace is made once and handed out as
// separate fds (closing one leaves the next usable), with exactly the map, and that
// another map gets its own.
func TestSharedUserns(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces")

	s := Set{HostUID: 3000000, HostGID: 3065536, Size: 65536}
	f1, cleanup1, err := s.SharedUserns()
	if err != nil {
		t.Fatal(err)
	}

	ino1 := nsInode(t, f1.Fd())
	cleanup1()

	f2, cleanup2, err := s.SharedUserns()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(cleanup2)
	if nsInode(t, f2.Fd()) != ino1 {
		t.Error("a second SharedUserns of the same map made another namespace")
	}

	uidMap, gidMap := mapsOf(t, f2)
	if strings.Join(strings.Fields(uidMap), " ") != "0 3000000 65536" || strings.Join(strings.Fields(gidMap), " ") != "0 3065536 65536" {
		t.Errorf("cached namespace maps uid %q gid %q", uidMap, gidMap)
	}

	other := Set{HostUID: 3131072, HostGID: 3131072, Size: 65536}
	f3, cleanup3, err := other.SharedUserns()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(cleanup3)
	if nsInode(t, f3.Fd()) == ino1 {
		t.Error("another map got the same namespace")
	}

	uidMap, _ = mapsOf(t, f3)
	if strings.Join(strings.Fields(uidMap), " ") != "0 3131072 65536" {
		t.Errorf("other map's namespace maps uid %q", uidMap)
	}
}

func BenchmarkSharedUserns(b *testing.B) {
	testutil.RequireRoot(b, "create user namespaces")

	s := Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}
	for b.Loop() {
		_, cleanup, err := s.SharedUserns()
		if err != nil {
			b.Fatal(err)
		}

		cleanup()
	}
}

// TestSharedUsernsConcurrent checks that starts asking at once for a map not yet cached
// all get the one namespace that is kept (one that lost the race to make it drops its own).
func TestSharedUsernsConcurrent(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces")

	s := Set{HostUID: 3262144, HostGID: 3262144, Size: 65536}
	inodes := make(chan uint64, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()

			f, cleanup, err := s.SharedUserns()
			if err != nil {
				t.Error(err)
				return
			}

			defer cleanup()
			inodes <- nsInode(t, f.Fd())
		}()
	}

	wg.Wait()
	close(inodes)

	f, cleanup, err := s.SharedUserns()
	if err != nil {
		t.Fatal(err)
	}

	defer cleanup()
	kept := nsInode(t, f.Fd())
	for ino := range inodes {
		if ino != kept {
			t.Errorf("a concurrent start got namespace %d, the cache keeps %d", ino, kept)
		}
	}
}
