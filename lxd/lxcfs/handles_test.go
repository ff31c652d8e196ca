package lxcfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
	"github.com/berth-dev/berth/test/testns"
)

// Handles gives copies of handles of the lxcfs directory's files only, and new ones once
// another filesystem is mounted there (a restarted lxcfs): a handle of the old mount
// would give a container a dead view.
func TestHandlesFollowTheMount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lxcfs")
	src := filepath.Join(dir, "proc", "meminfo")
	mounts := []setup.Mount{{Source: src, Target: "/proc/meminfo"}, {Source: "/dev/null", Target: "/dev/x"}}
	testns.InPrivateMountNS(t, func() error {
		err := os.MkdirAll(dir, 0o755)
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

		return err
	})
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
