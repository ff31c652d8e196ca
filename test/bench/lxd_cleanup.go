package main

import (
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// close deletes LXD's instances, stops the daemon and removes whatever it left
// (testutil.LXDPeer.Close), then flushes: deleting instances leaves a lot of dirty
// metadata, which must not slow down what runs next.
func (l *lxdDaemon) close() []string {
	problems := l.Close()
	unix.Sync()
	return problems
}

// mountsUnder lists the mount points at or under dir, in mountinfo order.
func mountsUnder(dir string) []string {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil
	}

	return mountinfo.Under(mounts, dir)
}
