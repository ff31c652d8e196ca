package confine

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs a compiled program (Filter.Program; empty: nothing) on the
// calling thread, which should be locked and about to exec: the filter is
// per thread and survives execve. No no_new_privs: loading needs
// CAP_SYS_ADMIN in the current user namespace instead, which container
// root has, and setuid programs inside (sudo) keep working.
func Load(prog []byte) error {
	if len(prog) == 0 {
		return nil
	}

	if len(prog)%8 != 0 || len(prog)/8 > maxInsns {
		return errors.New("loading seccomp filter: malformed program")
	}

	fprog := unix.SockFprog{Len: uint16(len(prog) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}

	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)

	if errno != 0 {
		return fmt.Errorf("loading seccomp filter: %w", errno)
	}

	return nil
}
