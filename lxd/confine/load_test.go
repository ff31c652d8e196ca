package confine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const envChild = "_BERTH_CONFINE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}

	os.Exit(m.Run())
}

// child loads the default filter on its thread (no_new_privs stands in for
// CAP_SYS_ADMIN) and reports how a few calls end, one per line.
func child() int {
	runtime.LockOSThread()

	f, err := Compile(DefaultPolicy())
	if err == nil {
		err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}

	if err == nil && os.Getenv(envChild) == "filter" {
		err = Load(f.Program)
	}

	if err != nil {
		fmt.Println("setup:", err)
		return 1
	}

	name := []byte("berth_no_such_module\x00")
	path := []byte("/berth-no-such-mount\x00")

	calls := []struct {
		name string
		call func() unix.Errno
	}{
		{"open_by_handle_at", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0)
			return e
		}},
		{"finit_module", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_FINIT_MODULE, ^uintptr(0), 0, 0)
			return e
		}},
		{"delete_module", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_DELETE_MODULE, uintptr(unsafe.Pointer(&name[0])), 0, 0)
			return e
		}},
		{"umount2_force", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(&path[0])), unix.MNT_FORCE, 0)
			return e
		}},
		{"btrfs_subvol_create", func() unix.Errno {
			// On a directory that is not btrfs: ENOTTY without the filter.
			fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err.(unix.Errno)
			}

			defer unix.Close(fd)
			_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), btrfsIocSubvolCreate, 0)
			return e
		}},
		{"btrfs_snap_create_v2", func() unix.Errno {
			fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err.(unix.Errno)
			}

			defer unix.Close(fd)
			_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), btrfsIocSnapCreateV2, 0)
			return e
		}},
		{"ioctl_other", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_IOCTL, 0, unix.TCGETS, 0)
			return e
		}},
		{"umount2", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(&path[0])), 0, 0)
			return e
		}},
		{"x32_getpid", func() unix.Errno {
			_, _, e := unix.RawSyscall(x32Bit|unix.SYS_GETPID, 0, 0, 0)
			return e
		}},
		{"getppid", func() unix.Errno {
			_, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
			return e
		}},
	}

	for _, c := range calls {
		fmt.Printf("%s=%d\n", c.name, int(c.call()))
	}

	return 0
}

func runChild(t *testing.T, mode string) map[string]unix.Errno {
	t.Helper()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode)

	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}

	got := map[string]unix.Errno{}

	for _, line := range strings.Fields(string(out)) {
		k, v, _ := strings.Cut(line, "=")

		var n int

		_, err := fmt.Sscan(v, &n)
		if err != nil {
			t.Fatalf("child said %q", out)
		}

		got[k] = unix.Errno(n)
	}

	return got
}

// TestLoadedFilterInTheKernel checks the decisions where they matter: the
// same calls without and with the filter, on this kernel.
func TestLoadedFilterInTheKernel(t *testing.T) {
	before := runChild(t, "plain")
	after := runChild(t, "filter")
	t.Logf("without: %v; with: %v", before, after)

	for _, name := range []string{"open_by_handle_at", "finit_module", "delete_module", "umount2_force", "x32_getpid", "btrfs_subvol_create", "btrfs_snap_create_v2"} {
		if after[name] != unix.EPERM {
			t.Errorf("%s with the filter: %v, want EPERM", name, after[name])
		}
	}

	// Controls: allowed calls end as they would without the filter.
	for _, name := range []string{"umount2", "getppid", "ioctl_other"} {
		if after[name] != before[name] {
			t.Errorf("%s: %v with the filter, %v without", name, after[name], before[name])
		}
	}

	// As root, the denied calls fail for another reason without the filter,
	// which is what shows the filter decided.
	if os.Geteuid() == 0 {
		for _, name := range []string{"open_by_handle_at", "finit_module", "delete_module", "umount2_force", "btrfs_subvol_create", "btrfs_snap_create_v2"} {
			if before[name] == unix.EPERM {
				t.Errorf("%s without the filter already gives EPERM: the test cannot tell", name)
			}
		}
	}
}

func TestLoadRejectsMalformed(t *testing.T) {
	err := Load(make([]byte, 12))
	if err == nil {
		t.Fatal("loaded 12 bytes")
	}

	if Load(nil) != nil {
		t.Fatal("an empty program is no filter")
	}
}

func TestBoundingOfSelf(t *testing.T) {
	got, err := Bounding(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}

	for c := 0; c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break
		}

		if (in == 1) != (got&(1<<c) != 0) {
			t.Fatalf("capability %d: CapBnd %#x, prctl %d", c, got, in)
		}
	}
}

// BenchmarkSyscall is the per-call cost of the default filter: getppid
// (an allowed call the kernel's action cache proves allowed) and a plain
// umount2 (the one allowed call whose decision reads an argument, so the
// program runs), each on a thread with and without the filter.
func BenchmarkSyscall(b *testing.B) {
	f, err := Compile(DefaultPolicy())
	if err != nil {
		b.Fatal(err)
	}

	path := []byte("/berth-no-such-mount\x00")

	calls := map[string]func(){
		"getppid": func() { _, _, _ = unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0) },
		"umount2": func() { _, _, _ = unix.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(&path[0])), 0, 0) },
	}

	for name, call := range calls {
		for _, filtered := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/filter=%t", name, filtered), func(b *testing.B) {
				done := make(chan error)

				// A thread of its own, never unlocked: it dies with its filter.
				go func() {
					runtime.LockOSThread()

					if filtered {
						err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
						if err == nil {
							err = Load(f.Program)
						}

						if err != nil {
							done <- err
							return
						}
					}

					for b.Loop() {
						call()
					}

					done <- nil
				}()

				err := <-done
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
