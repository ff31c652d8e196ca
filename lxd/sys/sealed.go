package sys

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// SealedSelfExe copies /proc/self/exe into a sealed memfd and returns a path
// that executes it (/proc/self/fd/<n>) together with the open file.
//
// Re-executing this copy instead of /proc/self/exe or the binary on disk means
// that nothing a container does can modify the host's berthd binary
// (CVE-2019-5736, runc's fix), and an upgrade of the package on disk cannot
// make a monitor run a different version than the daemon that started it.
//
// The fd is left without FD_CLOEXEC so the path stays valid in the child
// between fork and exec; the caller keeps the file open as long as it may
// exec the path, and closes it when done.
func SealedSelfExe() (string, *os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", nil, fmt.Errorf("opening own executable: %w", err)
	}

	defer func() { _ = src.Close() }()

	fd, err := unix.MemfdCreate("berthd", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("creating memfd: %w", err)
	}

	f := os.NewFile(uintptr(fd), "berthd-sealed")

	_, err = io.Copy(f, src)
	if err != nil {
		_ = f.Close()
		return "", nil, fmt.Errorf("copying own executable into memfd: %w", err)
	}

	_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	if err != nil {
		_ = f.Close()
		return "", nil, fmt.Errorf("sealing memfd: %w", err)
	}

	// Clear FD_CLOEXEC: the child process execs /proc/self/fd/<n>, which
	// must still exist in the child after fork.
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFD, 0)
	if err != nil {
		_ = f.Close()
		return "", nil, fmt.Errorf("clearing close-on-exec on memfd: %w", err)
	}

	return fmt.Sprintf("/proc/self/fd/%d", f.Fd()), f, nil
}
