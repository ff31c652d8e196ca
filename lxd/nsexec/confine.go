package nsexec

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"

	"github.com/berth-dev/berth/lxd/confine"
	"golang.org/x/sys/unix"
)

// Every command gets what the container's init got besides namespaces and
// cgroups (lxd/confine): init's capability bounding set, its seccomp
// filter, and a fresh session keyring of its own (never the daemon's).
// The daemon passes the first two in the helper's environment:
const (
	envCapBnd  = "_BERTH_NSEXEC_CAPBND"  // init's CapBnd, hex
	envSeccomp = "_BERTH_NSEXEC_SECCOMP" // the seccomp program, base64; absent: none
)

// confineEnv is the daemon's side: init's bounding set, read from the
// host's /proc and checked against the pidfd afterwards (a live pidfd
// means the pid was not recycled), and the program.
func confineEnv(pidfd, initPID int, seccomp []byte) ([]string, error) {
	bnd, err := confine.Bounding(initPID)
	if err != nil {
		return nil, err
	}

	err = unix.PidfdSendSignal(pidfd, 0, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("init %d: %w", initPID, err)
	}

	env := []string{envCapBnd + "=" + strconv.FormatUint(bnd, 16)}
	if len(seccomp) > 0 {
		env = append(env, envSeccomp+"="+base64.StdEncoding.EncodeToString(seccomp))
	}

	return env, nil
}

// confinement is the helper's side, read from its environment.
type confinement struct {
	capBnd  uint64
	bounded bool
	seccomp []byte
}

func readConfinement() (confinement, error) {
	var c confinement

	v := os.Getenv(envCapBnd)
	if v != "" {
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return c, fmt.Errorf("bad %s %q", envCapBnd, v)
		}

		c.capBnd, c.bounded = n, true
	}

	v = os.Getenv(envSeccomp)
	if v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return c, fmt.Errorf("bad %s: %w", envSeccomp, err)
		}

		c.seccomp = b
	}

	return c, nil
}

// bound trims the calling thread's bounding set to init's; it needs
// CAP_SETPCAP in the container's user namespace.
func (c confinement) bound() error {
	if !c.bounded {
		return nil
	}

	return confine.KeepBounding(c.capBnd)
}

// confineForkThread gives the exec server's fork thread init's bounding set
// and seccomp filter, once: every command it forks inherits both. The
// filter confines the thread itself too, which a deny list allows (the
// runtime makes none of those calls).
func confineForkThread(c confinement) error {
	err := c.bound()
	if err != nil {
		return err
	}

	return confine.Load(c.seccomp)
}
