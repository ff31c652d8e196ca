package confine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// JoinSessionKeyring gives the calling thread a new anonymous session
// keyring (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)); what it execs or
// forks afterwards inherits that one instead of the daemon's, which, with
// berthd started from a shell, is the admin's login keyring. Credentials
// are per thread: call it on the thread that forks or execs.
//
// (x/sys's KeyctlJoinSessionKeyring("") would pass an empty name, not
// NULL, and join a shared keyring named "".)
func JoinSessionKeyring() error {
	_, _, errno := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	if errno != 0 {
		return fmt.Errorf("joining a new session keyring: %w", errno)
	}

	return nil
}
