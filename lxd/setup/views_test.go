package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testns"
)

// readTree reads the file a detached clone of a file mount shows.
func readTree(tree int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", tree))
	return string(b), err
}

// A kernel view is cloned from its handle, not its path: here the path shows another
// file by then, and the clone still shows the handle's. A handle whose mount is gone
// (its lxcfs was unmounted) falls back to the path.
func TestCloneKernelViewsFromHandles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "lxcfs", "meminfo")
	views := []Mount{{Source: src, Target: "/proc/meminfo"}, {Source: "/dev/null", Target: "/dev/x"}}

	testns.InPrivateMountNS(t, func() error {
		fresh := func(content string) error {
			err := unix.Mount("tmpfs", filepath.Dir(src), "tmpfs", 0, "size=1m")
			if err == nil {
				err = os.WriteFile(src, []byte(content), 0o644)
			}

			return err
		}

		err := os.MkdirAll(filepath.Dir(src), 0o755)
		if err == nil {
			err = fresh("old")
		}

		if err != nil {
			return err
		}

		fd, err := unix.Open(src, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}

		defer func() { _ = unix.Close(fd) }()

		// Another mount on top: the path now shows "new".
		err = fresh("new")
		if err != nil {
			return err
		}

		for _, c := range []struct {
			what, want string
		}{{"from the handle", "old"}, {"after the handle's mount went", "new"}} {
			if c.want == "new" {
				// Unmount both, then mount "new" alone: the handle's mount is detached.
				for range 2 {
					err = unix.Unmount(filepath.Dir(src), unix.MNT_DETACH)
					if err != nil {
						return err
					}
				}

				err = fresh("new")
				if err != nil {
					return err
				}
			}

			trees, err := CloneKernelViews(views, map[string]int{src: fd})
			if err != nil {
				return fmt.Errorf("%s: %w", c.what, err)
			}

			if len(trees) != 1 {
				CloseMounts(trees)
				return fmt.Errorf("%s: %d clones for one kernel view", c.what, len(trees))
			}

			got, err := readTree(trees[0])
			CloseMounts(trees)
			if err != nil || got != c.want {
				return fmt.Errorf("%s: the clone shows %q (%v), want %q", c.what, got, err, c.want)
			}
		}

		return nil
	})
}

// A kernel view's clone is a slave even when its source is shared (lxcfs's mount in the
// daemon's namespace may be): a mount made on top of the clone (a disk at /proc/meminfo)
// stays off the source, so off the host and every other container's view.
func TestCloneKernelViewsAreSlaves(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "lxcfs", "meminfo")
	target := filepath.Join(dir, "root", "meminfo")
	other := filepath.Join(dir, "other")

	testns.InPrivateMountNS(t, func() error {
		for _, d := range []string{filepath.Dir(src), filepath.Dir(target)} {
			err := os.MkdirAll(d, 0o755)
			if err == nil {
				err = unix.Mount("tmpfs", d, "tmpfs", 0, "size=1m")
			}

			if err != nil {
				return err
			}
		}

		err := unix.Mount("", filepath.Dir(src), "", unix.MS_SHARED, "")
		for _, f := range []struct{ path, content string }{{src, "lxcfs"}, {target, ""}, {other, "disk"}} {
			if err == nil {
				err = os.WriteFile(f.path, []byte(f.content), 0o644)
			}
		}

		if err != nil {
			return err
		}

		trees, err := CloneKernelViews([]Mount{{Source: src, Target: "/proc/meminfo"}}, nil)
		if err != nil {
			return err
		}

		defer CloseMounts(trees)

		err = unix.MoveMount(trees[0], "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		if err == nil {
			err = unix.Mount(other, target, "", unix.MS_BIND, "")
		}

		if err != nil {
			return err
		}

		b, err := os.ReadFile(src)
		if err != nil || string(b) != "lxcfs" {
			return fmt.Errorf("the source shows %q (%v) after a mount on its clone, want %q", b, err, "lxcfs")
		}

		return nil
	})
}
