package lxcfs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// Handles gives copies of handles of the lxcfs directory's files only, and new ones once
// another filesystem is mounted there (a restarted lxcfs): a handle of the old mount
// would give a container a dead view.
func TestHandlesFollowTheMount(t *testing.T) {
	if os.Geteuid() != 0 {
		// test/testutil imports this package: its RequireRoot would be a cycle.
		if os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != "" {
			t.Fatal("needs root to mount")
		}

		t.Skip("needs root to mount")
	}

	dir := filepath.Join(t.TempDir(), "lxcfs")
	src := filepath.Join(dir, "proc", "meminfo")
	mounts := []setup.Mount{{Source: src, Target: "/proc/meminfo"}, {Source: "/dev/null", Target: "/dev/x"}}
	errc := make(chan error, 1)
	go func() {
		// A mount namespace of this thread's own; the thread dies with it.
		runtime.LockOSThread()
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, "")
		}

		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}

		for _, content := range []string{"first", "second"} {
			if err != nil {
				break
			}

			err = unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")
			if err == nil {
				err = os.MkdirAll(filepath.Dir(src), 0o755)
			}

			if err == nil {
				err = os.WriteFile(src, []byte(content), 0o644)
			}

			if err == nil {
				err = checkHandles(dir, mounts, src, content)
			}
		}

		errc <- err
	}()

	err := <-errc
	if err != nil {
		t.Fatal(err)
	}
}

// checkHandles checks that Handles gives one handle, of src, showing want.
func checkHandles(dir string, mounts []setup.Mount, src, want string) error {
	files := Handles(dir, mounts)
	defer CloseHandles(files)

	f := files[src]
	if len(files) != 1 || f == nil {
		return fmt.Errorf("got handles of %v, want of %s only", keys(files), src)
	}

	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil || string(b) != want {
		return fmt.Errorf("the handle of %s shows %q (%v), want %q", src, b, err, want)
	}

	return nil
}

func keys(files map[string]*os.File) []string {
	var out []string
	for k := range files {
		out = append(out, k)
	}

	return out
}
