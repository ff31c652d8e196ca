package idmap

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// usernsCacheMax bounds the cached namespaces: one per distinct map, and every container
// has a map of its own (isolated ranges), so the bound is a dense host's containers. An
// empty user namespace is well under a kilobyte of kernel memory.
const usernsCacheMax = 1024

// usernsCache holds one user namespace per map for idmapped mounts: making one costs a
// process (a clone, two map writes, a kill and a reap: 0.1-0.2 ms, BenchmarkUserns),
// which a start then does not pay. A namespace's maps are fixed once written and no
// process ever enters the cached ones, so one serves every mount of its map as a fresh
// one would.
var usernsCache = struct {
	sync.Mutex
	fds    map[Set]*os.File
	making map[Set]chan struct{} // closed when the namespace of its map is made or failed
}{fds: map[Set]*os.File{}, making: map[Set]chan struct{}{}}

// makeUserns makes a namespace for the cache (Set.Userns); tests count its calls.
var makeUserns = func(s Set) (*os.File, func(), error) { return s.Userns() }

// SharedUserns is Userns for mount_setattr(MOUNT_ATTR_IDMAP) alone: the fd is a duplicate
// of a cached namespace of this map (made on first use), which cleanup closes. Never let
// a process join it (setns): use Userns for that.
func (s Set) SharedUserns() (fd *os.File, cleanup func(), err error) {
	f, err := s.cachedUserns()
	if err != nil {
		return nil, nil, err
	}

	d := os.NewFile(uintptr(f), "userns")
	return d, func() { _ = d.Close() }, nil
}

// cachedUserns returns a new fd (close-on-exec) of the cached namespace of s, made first
// if need be: outside the lock, so that parallel starts with isolated maps (one
// namespace each) do not queue behind one another's holder. A caller that finds s being
// made waits for that one rather than making a second.
func (s Set) cachedUserns() (int, error) {
	for {
		usernsCache.Lock()
		f, ok := usernsCache.fds[s]
		if ok {
			defer usernsCache.Unlock()
			return dupFd(f)
		}

		wait, ok := usernsCache.making[s]
		if ok {
			usernsCache.Unlock()
			<-wait // then look again: made, or failed and ours to try

			continue
		}

		done := make(chan struct{})
		usernsCache.making[s] = done
		usernsCache.Unlock()

		made, _, err := makeUserns(s)

		usernsCache.Lock()
		delete(usernsCache.making, s)
		close(done)
		if err != nil {
			usernsCache.Unlock()
			return -1, err
		}

		if len(usernsCache.fds) >= usernsCacheMax {
			for k, old := range usernsCache.fds {
				_ = old.Close()
				delete(usernsCache.fds, k)
				break
			}
		}

		usernsCache.fds[s] = made
		fd, err := dupFd(made)
		usernsCache.Unlock()

		return fd, err
	}
}

func dupFd(f *os.File) (int, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("duplicating user namespace fd: %w", err)
	}

	return fd, nil
}
