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
// The fd is close-on-exec: no child inherits it (dnsmasq, lxcfs, monitors,
// anything the daemon starts). Exec of /proc/self/fd/<n> still works in a
// child, because execve opens the file before it closes close-on-exec fds;
// a monitor re-executes itself through /proc/self/exe, which is this copy.
// The fd sits at minExeFD or above so that a child's ExtraFiles, dup2'd onto
// fds 3, 4, ... between fork and exec, can never replace it. The caller
// keeps the file open as long as it may exec the path, and closes it when
// done.
func SealedSelfExe() (string, *os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", nil, fmt.Errorf("opening own executable: %w", err)
	}

	defer func() { _ = src.Close() }()

	return SealedCopy("berthd", src)
}

// SealedCopy is SealedSelfExe for any executable content (berth-init, embedded in the
// daemon): a sealed, close-on-exec memfd named name at fd minExeFD or above, and the
// /proc/self/fd path that executes it.
func SealedCopy(name string, src io.Reader) (string, *os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("creating memfd: %w", err)
	}

	f := os.NewFile(uintptr(fd), name+"-sealed")

	err = copyInto(f, src)
	if err != nil {
		_ = f.Close()
		return "", nil, fmt.Errorf("copying %s into memfd: %w", name, err)
	}

	_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	if err != nil {
		_ = f.Close()
		return "", nil, fmt.Errorf("sealing memfd: %w", err)
	}

	high, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, minExeFD)
	_ = f.Close()
	if err != nil {
		return "", nil, fmt.Errorf("moving memfd above fd %d: %w", minExeFD, err)
	}

	f = os.NewFile(uintptr(high), name+"-sealed")

	return fmt.Sprintf("/proc/self/fd/%d", high), f, nil
}

// minExeFD is the lowest fd the sealed copy may have: above any ExtraFiles a child gets.
const minExeFD = 64

// copyInto copies src into the memfd f. From a file it is sendfile, the copy in the
// kernel: io.Copy falls back to a read and a write per 32 kB between a file and a memfd
// (copy_file_range does not cross filesystems), 8-10 ms against 14-22 ms for berthd's 33
// MB on the 2-core VM, on the path to a daemon's first request.
func copyInto(f *os.File, src io.Reader) error {
	sf, ok := src.(*os.File)
	if !ok {
		_, err := io.Copy(f, src)
		return err
	}

	copied := 0
	for {
		// From src's position, which it advances, as io.Copy would.
		n, err := unix.Sendfile(int(f.Fd()), int(sf.Fd()), nil, 1<<30)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}

		if err != nil && copied == 0 && (err == unix.EINVAL || err == unix.ENOSYS) {
			// A source sendfile cannot read: the plain copy.
			_, err = io.Copy(f, sf)
			return err
		}

		if err != nil {
			return err
		}

		if n == 0 {
			return nil
		}

		copied += n
	}
}
