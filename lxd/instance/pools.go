package instance

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/storage"
)

// An instance lives on the storage pool its expanded root disk names (the "pool" key, as
// in LXD), or on the default pool when the root disk names none. That pool cannot change
// by a config edit (checkRootPool): an instance changes pools by a copy (Copy) or a
// move (MoveToPool).

// Pools gives the storage pools instances live on (*pools.Service).
type Pools interface {
	// Driver returns a pool's driver: a 404 StatusError for an unknown pool, a 503 for
	// one that did not load.
	Driver(name string) (storage.Driver, error)
	// Drivers returns every loaded pool's driver by name.
	Drivers() map[string]storage.Driver
}

// RootPool names the pool an instance with these expanded devices lives on: its root
// disk's pool, else def.
func RootPool(devices map[string]map[string]string, def string) string {
	pool := rootDiskKey(devices, "pool")
	if pool == "" {
		return def
	}

	return pool
}

// WithRootPool returns devices with the root disk on pool: a root disk of their own gets
// the pool key, else one is added ("root"), which overrides any a profile brings, as the
// stock lxc's --storage does.
func WithRootPool(devices map[string]map[string]string, pool string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(devices)+1)
	found := false
	for k, d := range devices {
		d = copyMap(d)
		if d["type"] == "disk" && device.IsRoot(d) {
			d["pool"] = pool
			found = true
		}

		out[k] = d
	}

	if !found {
		out["root"] = map[string]string{"type": "disk", "path": "/", "pool": pool}
	}

	return out
}

// poolSet resolves the pool of an instance from its expanded devices.
type poolSet struct {
	pools Pools
	def   string // Config.PoolName: the default pool
}

// nameOf is the pool an instance with these expanded devices lives on.
func (ps poolSet) nameOf(devices map[string]map[string]string) string {
	return RootPool(devices, ps.def)
}

// of returns the driver of the pool an instance with these expanded devices lives on.
func (ps poolSet) of(devices map[string]map[string]string) (storage.Driver, error) {
	name := ps.nameOf(devices)
	drv, err := ps.pools.Driver(name)
	if err != nil {
		return nil, fmt.Errorf("root disk: %w", err)
	}

	return drv, nil
}

// storageOf returns the driver of the pool instance name lives on.
func (m *Manager) storageOf(ctx context.Context, name string) (storage.Driver, error) {
	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	_, devices := Expand(inst, profiles)

	return m.pools.of(devices)
}
