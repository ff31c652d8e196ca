package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A loop device left attached to a file under the peer's directory is detached and
// reported; one backed by a file elsewhere is left alone.
func TestDetachLoops(t *testing.T) {
	RequireRoot(t, "attach loop devices")
	dir := t.TempDir()
	other := t.TempDir()

	mine := attachLoop(t, filepath.Join(dir, "d", "disks", "default.img"))
	theirs := attachLoop(t, filepath.Join(other, "x.img"))

	problems := detachLoops(dir)
	if len(problems) != 1 || !strings.Contains(problems[0], mine) {
		t.Errorf("problems = %q, want one naming %s", problems, mine)
	}

	if backing(mine) != "" {
		t.Errorf("%s still attached to %s", mine, backing(mine))
	}

	if backing(theirs) == "" {
		t.Errorf("%s, backed outside %s, was detached", theirs, dir)
	}
}

// attachLoop attaches a free loop device to a new 1 MiB file at path, without autoclear,
// and detaches it when t ends.
func attachLoop(t *testing.T, path string) string {
	t.Helper()
	err := os.MkdirAll(filepath.Dir(path), 0o700)
	if err != nil {
		t.Fatal(err)
	}

	err = os.WriteFile(path, make([]byte, 1<<20), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		SkipOrFail(t, "no loop devices: %v", err)
	}

	defer unix.Close(ctl)
	n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatal(err)
	}

	dev := fmt.Sprintf("/dev/loop%d", n)
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}

	defer file.Close()
	loop, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}

	defer unix.Close(loop)
	err = unix.IoctlSetInt(loop, unix.LOOP_SET_FD, int(file.Fd()))
	if err != nil {
		t.Fatalf("attaching %s: %v", dev, err)
	}

	t.Cleanup(func() {
		if backing(dev) == "" {
			return
		}

		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
			_ = unix.Close(fd)
		}
	})

	return dev
}

// backing is the backing file of a loop device, "" when it has none.
func backing(dev string) string {
	data, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/loop/backing_file")
	if err != nil {
		return ""
	}

	return strings.TrimSpace(string(data))
}
