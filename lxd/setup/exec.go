package setup

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Exec drops capabilities from the bounding set, marks every fd above 2
// close-on-exec, joins a fresh session keyring, calls beforeExec (the last
// chance to talk to the monitor), loads the seccomp filter and execs the
// first init candidate that exists. It returns only on failure.
//
// Preconditions: after Prepare, on the same locked OS thread: capability
// sets are per thread, and exec must come from the thread that holds them.
func Exec(cfg Config, beforeExec func() error) error {
	for _, c := range cfg.DropCaps {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}

	// Nothing of ours (the sync socket, Go runtime fds) may reach init.
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("marking fds close-on-exec: %w", err)
	}

	err = confineInit(cfg, beforeExec)
	if err != nil {
		return err
	}

	candidates := cfg.Init
	if len(candidates) == 0 {
		candidates = DefaultInit
	}

	var errs []error

	for _, path := range candidates {
		err = unix.Exec(path, []string{path}, cfg.Env)
		errs = append(errs, fmt.Errorf("executing %q: %w", path, err))
	}

	return errors.Join(errs...)
}
