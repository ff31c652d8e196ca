package lxcfs

import (
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// Finding an lxcfs file by its path is a FUSE round trip once the dentry's half-second
// lifetime ran out, and lxcfs answers some slowly: for /proc/slabinfo it reads the host's
// whole slabinfo (4.5 ms here). Every start cloned each file by path, on its critical
// path and at lxcfs's CPU cost. The daemon keeps an O_PATH handle of each file open
// instead, per lxcfs mount, and gives a copy to each start's monitor, which clones from it
// (setup.CloneKernelViews).

// held caches the handles of one lxcfs directory's files, opened on the mount mntID.
var held struct {
	mu  sync.Mutex
	dir map[string]*heldSet
}

type heldSet struct {
	mntID uint64
	files map[string]*os.File
}

// Handles returns a copy of the daemon's handle of each source in mounts that is a file
// of the lxcfs at dir, for the caller to hand to a monitor and close. Sources it could
// not open are left out: the monitor looks those up by path. An lxcfs mounted anew at
// dir since the handles were opened (another mount id) gets new ones, and the old are
// closed.
func Handles(dir string, mounts []setup.Mount) map[string]*os.File {
	if len(mounts) == 0 {
		return nil
	}

	id, ok := mountIDOf(unix.AT_FDCWD, dir) // the lxcfs mount when dir is its root
	if !ok {
		return nil
	}

	held.mu.Lock()
	defer held.mu.Unlock()
	if held.dir == nil {
		held.dir = map[string]*heldSet{}
	}

	set := held.dir[dir]
	if set == nil || set.mntID != id {
		if set != nil {
			CloseHandles(set.files)
		}

		set = &heldSet{mntID: id, files: map[string]*os.File{}}
		held.dir[dir] = set
	}

	out := map[string]*os.File{}
	for _, b := range mounts {
		if !strings.HasPrefix(b.Source, dir+"/") {
			continue
		}

		f := set.files[b.Source]
		if f == nil {
			f = openHandle(b.Source, id)
			if f == nil {
				continue
			}

			set.files[b.Source] = f
		}

		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			out[b.Source] = os.NewFile(uintptr(fd), f.Name())
		}
	}

	return out
}

// openHandle opens an O_PATH handle of path if it lies on the mount mntID.
func openHandle(path string, mntID uint64) *os.File {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}

	f := os.NewFile(uintptr(fd), path)
	id, ok := mountIDOf(fd, "")
	if !ok || id != mntID {
		_ = f.Close()
		return nil
	}

	return f
}

// mountIDOf asks for the mount id only, from what the kernel has: a full stat of an lxcfs
// file could be the FUSE round trip the handles are there to avoid.
func mountIDOf(dirfd int, path string) (uint64, bool) {
	flags := unix.AT_STATX_DONT_SYNC
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}

	var st unix.Statx_t
	err := unix.Statx(dirfd, path, flags, unix.STATX_MNT_ID, &st)
	if err != nil || st.Mask&unix.STATX_MNT_ID == 0 {
		return 0, false
	}

	return st.Mnt_id, true
}

// CloseHandles closes what Handles returned.
func CloseHandles(files map[string]*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
