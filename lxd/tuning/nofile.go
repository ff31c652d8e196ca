package tuning

import (
	"fmt"
	"syscall"
)

// rlimits is the process's RLIMIT_NOFILE, behind an interface for tests.
type rlimits interface {
	get() (syscall.Rlimit, error)
	set(syscall.Rlimit) error
}

type processLimits struct{}

func (processLimits) get() (syscall.Rlimit, error) {
	var r syscall.Rlimit
	err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r, err
}

// set goes through syscall.Setrlimit on purpose: Go then stops restoring its startup soft
// limit in children, so monitors (and the containers' init, as under LXD) inherit it.
func (processLimits) set(r syscall.Rlimit) error {
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

// raiseNofile raises the soft and hard RLIMIT_NOFILE to target, no higher than nrOpen
// (the kernel's ceiling, fs.nr_open) and never lower than they are. Without
// CAP_SYS_RESOURCE the hard limit stays: the soft one still goes up to it, and err says
// why the hard one did not.
func raiseNofile(l rlimits, target, nrOpen uint64) (old, now syscall.Rlimit, err error) {
	old, err = l.get()
	if err != nil {
		return old, old, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}

	if nrOpen > 0 && target > nrOpen {
		target = nrOpen
	}

	want := syscall.Rlimit{Max: max(old.Max, target)}
	want.Cur = max(old.Cur, min(target, want.Max))
	if want == old {
		return old, old, nil
	}

	err = l.set(want)
	if err == nil {
		return old, want, nil
	}

	err = fmt.Errorf("raising the hard RLIMIT_NOFILE to %d: %w", target, err)
	soft := syscall.Rlimit{Cur: max(old.Cur, min(target, old.Max)), Max: old.Max}
	if soft == old || l.set(soft) != nil {
		return old, old, err
	}

	return old, soft, err
}
