package instance

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/shared/api"
)

// seccompOf compiles the seccomp filter of an expanded config (cached per
// distinct policy in lxd/confine). A bad combination of keys, which the
// per-key validation cannot see (allow from a profile, deny locally), is
// a 400 naming it.
func seccompOf(config map[string]string) (*confine.Filter, error) {
	f, err := confine.FromConfig(config)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid seccomp policy: %v", err)
	}

	return f, nil
}

// StartedSeccomp is the filter the running instance's init got: execs get
// the same, whatever its config says since (security.syscalls.* apply at
// the next start, as in LXD).
func (m *Manager) StartedSeccomp(name string) (*confine.Filter, error) {
	spec, err := container.ReadSpec(m.runDir(name))
	if err != nil {
		return nil, err
	}

	return spec.Seccomp, nil
}
