package setup

import "github.com/berth-dev/berth/lxd/confine"

// confineInit is init's last step before exec, around beforeExec: a
// session keyring of its own (else init would possess the monitor's, which
// is berthd's and, with berthd started from a shell, the admin's login
// keyring), then the seccomp filter, as late as possible so that as little
// of our own code as possible runs under an allowlist. Loading without
// no_new_privs needs CAP_SYS_ADMIN in the container's user namespace,
// which we hold here; no_new_privs would break setuid programs (sudo)
// inside.
//
// Preconditions: on the locked thread that execs (both are per thread).
func confineInit(cfg Config, beforeExec func() error) error {
	err := confine.JoinSessionKeyring()
	if err != nil {
		return err
	}

	err = beforeExec()
	if err != nil {
		return err
	}

	return confine.Load(cfg.Seccomp)
}
