package idmap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func TestMappings(t *testing.T) {
	s := Set{HostUID: 1000000, HostGID: 2000000, Size: 65536}
	u := s.UIDMappings()
	g := s.GIDMappings()
	if len(u) != 1 || u[0] != (syscall.SysProcIDMap{ContainerID: 0, HostID: 1000000, Size: 65536}) {
		t.Errorf("UIDMappings = %v", u)
	}

	if len(g) != 1 || g[0] != (syscall.SysProcIDMap{ContainerID: 0, HostID: 2000000, Size: 65536}) {
		t.Errorf("GIDMappings = %v", g)
	}
}

func TestUserns(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces and chown")

	s := Set{HostUID: 1000000, HostGID: 1065536, Size: 65536}
	f, cleanup, err := s.Userns()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(cleanup)

	// The fd must be a user namespace other than ours.
	var st, self unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	if err != nil {
		t.Fatal(err)
	}

	err = unix.Stat("/proc/self/ns/user", &self)
	if err != nil {
		t.Fatal(err)
	}

	if st.Ino == self.Ino {
		t.Fatal("got our own user namespace")
	}

	// Its maps are exactly the set: read them from a process we put in it.
	uidMap, gidMap := mapsOf(t, f)
	if strings.Join(strings.Fields(uidMap), " ") != "0 1000000 65536" {
		t.Errorf("uid_map = %q", uidMap)
	}

	if strings.Join(strings.Fields(gidMap), " ") != "0 1065536 65536" {
		t.Errorf("gid_map = %q", gidMap)
	}
}

// mapsOf reads the maps of the user namespace behind f. A Go process cannot setns into a
// user namespace (it is multithreaded), so a nsenter(1) child does it with f as fd 3.
func mapsOf(t *testing.T, f *os.File) (string, string) {
	t.Helper()

	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		testutil.SkipOrFail(t, "nsenter(1) (util-linux) is not installed")
	}

	read := func(file string) string {
		cmd := exec.Command(nsenter, "--user=/proc/self/fd/3", "cat", file)
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("reading %s in the namespace: %v: %s", file, err, out)
		}

		return string(out)
	}

	return read("/proc/self/uid_map"), read("/proc/self/gid_map")
}

func BenchmarkUserns(b *testing.B) {
	testutil.RequireRoot(b, "create user namespaces and chown")

	s := Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}
	for b.Loop() {
		_, cleanup, err := s.Userns()
		if err != nil {
			b.Fatal(err)
		}

		cleanup()
	}
}

// TestUsernsReapsHolder: each namespace's holder process is killed and reaped before
// Userns returns, so that none is left running or as a zombie (a clone child with no exit
// signal is invisible to a wait for ordinary children).
func TestUsernsReapsHolder(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces")

	before := childrenOfSelf(t)
	for i := range 20 {
		s := Set{HostUID: 1000000 + int64(i)*65536, HostGID: 1000000 + int64(i)*65536, Size: 65536}
		_, cleanup, err := s.Userns()
		if err != nil {
			t.Fatal(err)
		}

		cleanup()
	}

	after := childrenOfSelf(t)
	if len(after) > len(before) {
		t.Fatalf("children before: %v, after: %v", before, after)
	}
}

// childrenOfSelf lists the pids of this process's children, of all its threads.
func childrenOfSelf(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}

	var pids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}

		pids = append(pids, strings.Fields(string(b))...)
	}

	return pids
}
