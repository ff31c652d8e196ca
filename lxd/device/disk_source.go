package device

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/berth-dev/berth/lxd/fileio"
	"golang.org/x/sys/unix"
)

// daemonDir is the daemon's state directory (BERTH_DIR), which no disk may share: it holds
// the API socket, the database and every container's storage. Set by NewHost.
var daemonDir atomic.Pointer[string]

// openDiskSource resolves a disk's source once, as an O_PATH fd that later mounts are
// cloned from: no symlink is followed in any component (RESOLVE_NO_SYMLINKS), so a
// symlink swapped in by anyone (the container, through a share of the parent directory)
// cannot redirect the mount. It returns -1 and no error for a missing optional source
// (required=false). The errors name the key for a 400.
func openDiskSource(conf map[string]string) (int, error) {
	src := conf["source"]
	if src == "" || !filepath.IsAbs(src) {
		return -1, fmt.Errorf("\"source\" must be an absolute host path, not %q", src)
	}

	clean := filepath.Clean(src)

	err := checkNotDaemonDir(clean)
	if err != nil {
		return -1, err
	}

	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}

	var fd int
	for range 16 {
		fd, err = unix.Openat2(unix.AT_FDCWD, clean, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}

	switch {
	case errors.Is(err, unix.ENOENT) && optional(conf):
		return -1, nil
	case errors.Is(err, unix.ELOOP):
		hint := ""
		real, rerr := filepath.EvalSymlinks(clean)
		if rerr == nil && real != clean {
			hint = fmt.Sprintf(" (%q)", real)
		}

		return -1, fmt.Errorf("\"source\" %q has a symbolic link in its path: name the real path%s", src, hint)
	case err != nil:
		return -1, fmt.Errorf("\"source\" %q: %w", src, err)
	}

	fs, err := fileio.KernelFSName(fd)
	if err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("\"source\" %q: %w", src, err)
	}

	if fs != "" {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("\"source\" %q is on %s: the host kernel's files cannot be shared", src, fs)
	}

	return fd, nil
}

// checkNotDaemonDir refuses the daemon's state directory, anything in it and anything
// that contains it ("/" included).
func checkNotDaemonDir(clean string) error {
	if clean == "/" {
		return fmt.Errorf("\"source\" cannot be / (it holds berthd's state directory)")
	}

	p := daemonDir.Load()
	if p == nil || *p == "" {
		return nil
	}

	dir := filepath.Clean(*p)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}

	if clean == dir || strings.HasPrefix(clean, dir+"/") || strings.HasPrefix(dir, clean+"/") {
		return fmt.Errorf("\"source\" %q overlaps berthd's state directory %q", clean, dir)
	}

	return nil
}
