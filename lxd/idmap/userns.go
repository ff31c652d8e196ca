package idmap

import (
	"fmt"
	"os"
	"syscall"
)

// UIDMappings expresses the uid half of the set for os/exec (syscall.SysProcAttr).
func (s Set) UIDMappings() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(s.HostUID), Size: int(s.Size)}}
}

// GIDMappings expresses the gid half of the set for os/exec (syscall.SysProcAttr).
func (s Set) GIDMappings() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(s.HostGID), Size: int(s.Size)}}
}

// Userns returns an fd of a fresh user namespace carrying exactly this mapping, as
// mount_setattr(MOUNT_ATTR_IDMAP) needs. cleanup closes the fd; the namespace lives as
// long as the fd or anything using it (an idmapped mount keeps its own reference).
//
// How: a holder process cloned into a new user namespace, sharing our memory, whose maps
// we write before opening /proc/<pid>/ns/user and killing it (usernsWith says why not a
// child of os.StartProcess).
//
// Preconditions: the caller may create user namespaces and write arbitrary maps (root).
func (s Set) Userns() (fd *os.File, cleanup func(), err error) {
	if s.Size <= 0 {
		return nil, nil, fmt.Errorf("creating user namespace: empty id map")
	}

	return usernsWith(s.UIDMappings(), s.GIDMappings())
}
