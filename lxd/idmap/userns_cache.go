package idmap

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// usernsCacheMax bounds the cached namespaces: one per distinct map, and a host with
// isolated maps has one per container.
const usernsCacheMax = 64

// usernsCache holds one user namespace per map for idmapped mounts: making one costs a
// process (fork, exec stopped by ptrace, kill, reap), ~10 ms of the daemon's CPU per
// start on a virtual machine where every exec exits to the hypervisor. A namespace's maps
// are fixed once written and no process ever enters the cached ones, so one serves every
// mount of its map as a fresh one would.
var usernsCache = struct {
	sync.Mutex
	fds map[Set]*os.File
}{fds: map[Set]*os.File{}}

// SharedUserns is Userns for mount_setattr(MOUNT_ATTR_IDMAP) alone: the fd is a duplicate
// of a cached namespace of this map (made on first use), which cleanup closes. Never let
// a process join it (setns): use Userns for that.
func (s Set) SharedUserns() (fd *os.File, cleanup func(), err error) {
	usernsCache.Lock()
	defer usernsCache.Unlock()

	f, ok := usernsCache.fds[s]
	if !ok {
		f, _, err = s.Userns()
		if err != nil {
			return nil, nil, err
		}

		if len(usernsCache.fds) >= usernsCacheMax {
			for k, old := range usernsCache.fds {
				_ = old.Close()
				delete(usernsCache.fds, k)
				break
			}
		}

		usernsCache.fds[s] = f
	}

	dup, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("duplicating user namespace fd: %w", err)
	}

	d := os.NewFile(uintptr(dup), f.Name())
	return d, func() { _ = d.Close() }, nil
}
