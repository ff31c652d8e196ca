package fileio

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// asOwner runs fn (which creates an inode) with the filesystem ids of owner on a thread of
// its own. A filesystem mounted inside the container's user namespace (its tmpfs /tmp or
// /run) refuses to create inodes for host root, whose id it cannot represent (EOVERFLOW);
// with fsuid/fsgid set to ids of the container, creation works and the new entry is owned
// by them from the start.
//
// Changing the fsuid away from 0 drops the filesystem capabilities from the thread's
// effective set; they are raised again from the permitted set so DAC checks behave as for
// root. The thread is never unlocked, so Go discards it when the goroutine ends instead of
// reusing a thread with changed credentials.
func asOwner(owner Owner, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			err := unix.Setfsgid(owner.GID)
			if err != nil {
				return fmt.Errorf("setting fsgid: %w", err)
			}

			err = unix.Setfsuid(owner.UID)
			if err != nil {
				return fmt.Errorf("setting fsuid: %w", err)
			}

			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var caps [2]unix.CapUserData
			err = unix.Capget(&hdr, &caps[0])
			if err != nil {
				return fmt.Errorf("reading capabilities: %w", err)
			}

			caps[0].Effective, caps[1].Effective = caps[0].Permitted, caps[1].Permitted
			err = unix.Capset(&hdr, &caps[0])
			if err != nil {
				return fmt.Errorf("raising capabilities: %w", err)
			}

			return fn()
		}()
	}()

	return <-errc
}
