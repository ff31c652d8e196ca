package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ownNewFiles makes what this thread creates from now on (mount points,
// /dev's symlinks, the masks' tmpfs roots) belong to the container's root,
// as if it had made them: its host ids become the thread's fsuid and
// fsgid. The change of fsuid clears the file capabilities from the
// effective set; they are raised again from the permitted one, so host root
// still reaches everything. restore undoes both.
//
// Preconditions: on a locked OS thread (fsuid and capabilities are per
// thread), as host root.
func ownNewFiles(uid, gid uint32) (restore func(), err error) {
	_ = unix.Setfsgid(int(gid))
	_ = unix.Setfsuid(int(uid))

	restore = func() {
		_ = unix.Setfsuid(0)
		_ = unix.Setfsgid(0)
	}

	// setfs[ug]id report no errors: read them back (-1 changes nothing).
	cur, _ := unix.SetfsuidRetUid(-1)
	curg, _ := unix.SetfsgidRetGid(-1)

	if cur != int(uid) || curg != int(gid) {
		restore()
		return nil, fmt.Errorf("acting as the container's root (%d:%d): fsuid %d, fsgid %d", uid, gid, cur, curg)
	}

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}

	var caps [2]unix.CapUserData

	err = unix.Capget(&hdr, &caps[0])
	if err == nil {
		caps[0].Effective, caps[1].Effective = caps[0].Permitted, caps[1].Permitted
		err = unix.Capset(&hdr, &caps[0])
	}

	if err != nil {
		restore()
		return nil, fmt.Errorf("raising file capabilities: %w", err)
	}

	return restore, nil
}
