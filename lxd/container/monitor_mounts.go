package container

import (
	"encoding/json"
	"path/filepath"
	"slices"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// setMounts replaces the mounts a reboot gives the next init and the host
// mounts the final stop removes (devices added or removed while running),
// and rewrites the spec file so that it says what the monitor does.
func (m *monitor) setMounts(mounts []Mount, unmounts []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	m.spec.Mounts = slices.Clone(mounts)
	m.spec.Unmounts = slices.Clone(unmounts)

	b, err := json.Marshal(m.spec)
	if err != nil {
		return err
	}

	return atomicfile.Write(filepath.Join(m.spec.RunDir, specFile), b, 0o600)
}

// mounts returns what the next init binds and what the final stop unmounts.
func (m *monitor) mounts() ([]Mount, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()

	return slices.Clone(m.spec.Mounts), slices.Clone(m.spec.Unmounts)
}
