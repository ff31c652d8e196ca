package idmap

// #cgo CFLAGS: -Wall -std=gnu99
// #include <stdlib.h>
// #include "userns_holder.h"
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usernsWith makes a user namespace with the given mappings (see Userns): a holder
// process (userns_holder.c) is cloned into a new user namespace with CLONE_VM, so it
// shares the daemon's memory instead of copying its page tables, and runs nothing but a
// wait to be killed. The maps are written from here, the namespace opened, and the
// holder killed and reaped.
//
// Why not os.StartProcess with CLONE_NEWUSER: Go then forks (it cannot vfork a child
// whose maps the parent writes before exec) and the child execs a binary under ptrace.
// On a paravirtualised VM that fork of the daemon (page tables, then a copy-on-write
// fault for each page the daemon writes until the child is gone) and that exec cost
// 3-5 ms of CPU per namespace, on a launch's path (BenchmarkUserns: 3.2 ms against
// 0.1 ms for the clone).
//
// The holder shares our memory, and its namespace is owned by host root, in which any
// process of euid 0 holds every capability: through /proc/<holder>/mem, even a root
// without capabilities could write into the daemon's memory, and keep that fd after the
// holder is gone. A process that is not dumpable refuses that to all but CAP_SYS_PTRACE
// in its memory's user namespace (the host's), so the daemon gives up being dumpable
// (notDumpable) before the first holder; it dumps no core, and /proc/<pid> of it is
// root's, which it is anyway.
func usernsWith(uids, gids []syscall.SysProcIDMap) (fd *os.File, cleanup func(), err error) {
	err = notDumpable()
	if err != nil {
		return nil, nil, err
	}

	var stack unsafe.Pointer
	pid := int(C.berth_userns_holder(&stack))
	if pid < 0 {
		return nil, nil, fmt.Errorf("starting user namespace holder: %w", syscall.Errno(-pid))
	}

	defer reapHolder(pid, stack)

	if holderHook != nil {
		holderHook(pid)
	}

	err = writeMap(pid, "uid_map", uids)
	if err == nil {
		err = writeMap(pid, "gid_map", gids)
	}

	if err != nil {
		return nil, nil, err
	}

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, nil, fmt.Errorf("opening user namespace of %d: %w", pid, err)
	}

	return f, func() { _ = f.Close() }, nil
}

// writeMap writes the maps of the holder pid's namespace (file uid_map or gid_map), in
// one write as the kernel requires.
func writeMap(pid int, file string, maps []syscall.SysProcIDMap) error {
	var b strings.Builder
	for _, m := range maps {
		b.WriteString(strconv.Itoa(m.ContainerID) + " " + strconv.Itoa(m.HostID) + " " + strconv.Itoa(m.Size) + "\n")
	}

	err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, file), []byte(b.String()), 0)
	if err != nil {
		return fmt.Errorf("writing %s of user namespace holder: %w", file, err)
	}

	return nil
}

// holderHook, set by tests, sees each holder alive, before its maps are written.
var holderHook func(pid int)

// notDumpable makes the daemon not dumpable, once (usernsWith says why).
var notDumpable = sync.OnceValue(func() error {
	err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}

	return nil
})

// reapHolder kills and reaps the holder, then frees its stack: only once it is gone (or
// was never ours to wait for), as it runs on that stack until then. Another error
// leaves the stack allocated rather than risk it.
func reapHolder(pid int, stack unsafe.Pointer) {
	_ = unix.Kill(pid, unix.SIGKILL)
	for {
		_, err := unix.Wait4(pid, nil, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err == nil || errors.Is(err, unix.ECHILD) {
			C.free(stack)
		}

		return
	}
}
