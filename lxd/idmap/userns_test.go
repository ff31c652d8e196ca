package idmap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
// signal is invisible to a wait for ordinary children). The hook first checks that a live
// holder shows among our children, so that an empty listing cannot pass for a clean one.
func TestUsernsReapsHolder(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces")

	seen := 0
	withHolderHook(t, func(pid int) {
		if slices.Contains(childrenOfSelf(t), strconv.Itoa(pid)) {
			seen++
		}
	})

	before := childrenOfSelf(t)
	for i := range 20 {
		s := Set{HostUID: 1000000 + int64(i)*65536, HostGID: 1000000 + int64(i)*65536, Size: 65536}
		_, cleanup, err := s.Userns()
		if err != nil {
			t.Fatal(err)
		}

		cleanup()
	}

	if seen != 20 {
		t.Fatalf("%d of 20 live holders were listed among our children", seen)
	}

	after := childrenOfSelf(t)
	if len(after) > len(before) {
		t.Fatalf("children before: %v, after: %v", before, after)
	}
}

// TestUsernsHolderConfined: the holder shares the daemon's memory, so nothing may reach
// that memory through it. Every signal is blocked in it, glibc's own included (no handler
// of the Go runtime or of glibc may run on its stack), and a root without capabilities
// cannot open /proc/<holder>/mem (the namespace is host root's, in which such a root
// holds every capability: only the daemon not being dumpable refuses it).
func TestUsernsHolderConfined(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces")

	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testutil.SkipOrFail(t, "setpriv(1) (util-linux) is not installed")
	}

	checked := false
	withHolderHook(t, func(pid int) {
		checked = true
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}

		// All 64 but SIGKILL and SIGSTOP, which the kernel never blocks.
		if !strings.Contains(string(status), "SigBlk:\tfffffffffffbfeff\n") {
			t.Errorf("the holder does not block every signal:\n%s", status)
		}

		// Root with no capabilities at all (bounding set emptied before the exec).
		out, err := exec.Command(setpriv, "--bounding-set=-all", "--inh-caps=-all", "--",
			"sh", "-c", fmt.Sprintf("exec 3</proc/%d/mem", pid)).CombinedOutput()
		if err == nil {
			t.Errorf("a root without capabilities opened the holder's memory")
		} else if !strings.Contains(string(out), "Permission denied") {
			t.Errorf("opening the holder's memory: %v: %s", err, out)
		}
	})

	s := Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}
	_, cleanup, err := s.Userns()
	if err != nil {
		t.Fatal(err)
	}

	cleanup()
	if !checked {
		t.Fatal("no holder was seen")
	}
}

func withHolderHook(t *testing.T, hook func(pid int)) {
	t.Helper()
	holderHook = hook
	t.Cleanup(func() { holderHook = nil })
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
