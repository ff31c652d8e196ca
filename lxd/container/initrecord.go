package container

import (
	"sync"

	"golang.org/x/sys/unix"
)

// initRecord is the daemon's record of a container's init: its pid and a pidfd of it.
// Asking the monitor for the pid costs a socket round trip, and the state of every
// instance of a list, each exec and each file operation want it; the pidfd answers "is it
// still the same process" with one poll(2), and unlike the bare pid it cannot come to name
// another process that got the number since.
type initRecord struct {
	mu    sync.Mutex
	pid   int
	fd    int  // pidfd of pid, when open
	valid bool // fd is open
}

// learn records pid as init's.
func (p *initRecord) learn(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.learnLocked(pid)
}

func (p *initRecord) learnLocked(pid int) {
	if pid == p.pid && p.valid {
		return
	}

	p.closeLocked()
	p.pid = pid
	if pid <= 0 {
		return
	}

	// The pid comes fresh from the monitor, which is init's parent: init cannot have been
	// reaped and its number reused in between unless it died in these microseconds, and
	// then the pidfd is of an exited process or fails to open, and the next call asks
	// again.
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		p.fd, p.valid = fd, true
	}
}

// alive says whether the recorded init still runs. Preconditions: p.mu is held.
func (p *initRecord) alive() bool {
	if !p.valid {
		return false
	}

	// A pidfd turns readable when its process exits.
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)

	return err == nil && n == 0
}

func (p *initRecord) close() {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.closeLocked()
}

func (p *initRecord) closeLocked() {
	if p.valid {
		_ = unix.Close(p.fd)
	}

	p.valid = false
}
