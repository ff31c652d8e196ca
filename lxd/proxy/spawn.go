package proxy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen binds the host side of a proxy (with the daemon's privileges, so that a port
// below 1024 works) and returns the socket as a file to hand to Spawn.
func Listen(a Addr) (*os.File, error) {
	switch a.Net {
	case "tcp":
		l, err := net.Listen("tcp", a.String())
		if err != nil {
			return nil, err
		}

		defer func() { _ = l.Close() }()
		return l.(*net.TCPListener).File()
	case "udp":
		pc, err := net.ListenPacket("udp", a.String())
		if err != nil {
			return nil, err
		}

		defer func() { _ = pc.Close() }()
		return pc.(*net.UDPConn).File()
	}

	return nil, fmt.Errorf("unknown protocol %q", a.Net)
}

// Spawn starts cmd (a proxy: exe __proxy listen connect, with the status pipe, the
// listening socket and the init's pidfd as ExtraFiles) inside the network namespace netns
// and without privilege: as uid/gid with no supplementary groups, an empty capability
// bounding set and no_new_privs. Those are per-thread attributes a child inherits from
// the thread that forks it, so the fork happens on a throwaway OS thread that joins the
// namespace and drops them first, and that the runtime destroys afterwards (its goroutine
// ends locked). The uid change before exec clears every other capability set.
func Spawn(cmd *exec.Cmd, netns *os.File, uid, gid uint32) error {
	if uid == 0 || gid == 0 {
		return fmt.Errorf("a proxy must not run as root")
	}

	if cmd.SysProcAttr == nil {
		return fmt.Errorf("proxy command without SysProcAttr")
	}

	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: this thread is in another namespace and has lost privileges.

		err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET)
		if err != nil {
			done <- fmt.Errorf("joining the container's network namespace: %w", err)
			return
		}

		err = dropBoundingSet()
		if err != nil {
			done <- err
			return
		}

		err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		if err != nil {
			done <- fmt.Errorf("setting no_new_privs: %w", err)
			return
		}

		done <- cmd.Start()
	}()

	return <-done
}

// dropBoundingSet empties this thread's capability bounding set.
func dropBoundingSet() error {
	for c := 0; ; c++ {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err == unix.EINVAL {
			return nil // past the last capability this kernel has
		}

		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
}
