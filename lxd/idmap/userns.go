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
// How: like runc (libcontainer/userns), start a child with CLONE_NEWUSER and the mappings
// under PTRACE_TRACEME. Go writes the maps before the child goes on; the child's execve
// then stops it with SIGTRAP before it runs one instruction, so the exec target
// (/proc/self/exe, always present) needs no cooperation. We open /proc/<pid>/ns/user, then
// SIGKILL and reap it. A raw clone(2) behind the Go runtime's back (containerd's way) would
// skip the exec but needs linkname access to runtime fork hooks and unsafe code; the exec
// here costs well under a millisecond (see BenchmarkUserns).
//
// Preconditions: the caller may create user namespaces and write arbitrary maps (root).
func (s Set) Userns() (fd *os.File, cleanup func(), err error) {
	if s.Size <= 0 {
		return nil, nil, fmt.Errorf("creating user namespace: empty id map")
	}

	return usernsWith(s.UIDMappings(), s.GIDMappings())
}

// usernsWith makes a user namespace with the given mappings (see Userns).
func usernsWith(uids, gids []syscall.SysProcIDMap) (fd *os.File, cleanup func(), err error) {
	proc, err := os.StartProcess("/proc/self/exe", []string{"berth-userns"}, &os.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER,
			UidMappings:                uids,
			GidMappings:                gids,
			GidMappingsEnableSetgroups: true,
			Ptrace:                     true,
			Pdeathsig:                  syscall.SIGKILL,
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting user namespace holder: %w", err)
	}

	defer func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	}()

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", proc.Pid))
	if err != nil {
		return nil, nil, fmt.Errorf("opening user namespace of %d: %w", proc.Pid, err)
	}

	return f, func() { _ = f.Close() }, nil
}
