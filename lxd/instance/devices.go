package instance

import (
	"context"
	"maps"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/lxcfs"
	"github.com/berth-dev/berth/lxd/storage"
)

// The devices are lxd/device's; what is here is the instance's side of them: the context
// an instance's devices get, what its spec adds around their mounts, and the record of
// the volatile keys its NICs set.

// deviceInstance is what the devices of inst see of it; rootfs is its root mounted on the
// host during a start, "" otherwise.
func (m *Manager) deviceInstance(inst *db.Instance, ids idmap.Set, rootfs string) *device.Instance {
	// A copy of the config: a start prepares the devices while its templates read inst.
	return &device.Instance{Name: inst.Name, Dir: m.instanceDir(inst.Name), IDs: ids, Config: maps.Clone(inst.Config), Rootfs: rootfs}
}

// checkHotplug refuses a device change a running container cannot take. The root disk's
// size changes through the pool (applyRootChange), not by hotplug.
func checkHotplug(old, new map[string]map[string]string) error {
	return device.CheckHotplug(withoutRootSize(old), withoutRootSize(new))
}

// specMounts is Spec.Mounts: lxcfs's files, then the devices' mounts (their hotplug
// directory, then the devices).
func specMounts(devices []container.Mount) []container.Mount {
	return append(lxcfs.Binds(lxcfs.Dir()), devices...)
}

// unmountsFor is Spec.Unmounts of an instance whose pool is not at hand (a hot-plug's
// reboot mounts): it reads the pool (specUnmounts).
func (m *Manager) unmountsFor(name string, devices []string) []string {
	pool, err := m.storageOf(context.Background(), name)
	if err != nil {
		m.log.Warn("finding the pool of an instance; its root stays mounted when it stops", "instance", name, "err", err)
		return devices
	}

	return specUnmounts(pool, name, devices)
}

// specUnmounts is Spec.Unmounts: the devices' (hotplug directory, staged mounts), then
// those of the storage pool the instance lives on.
func specUnmounts(pool storage.Driver, name string, devices []string) []string {
	return append(devices, pool.Mountpoints(name)...)
}

// rebootMounts gives the monitor of a running instance the device mounts of its next
// in-place reboot, which starts from the monitor's spec and not from the database.
func (cf *Configurator) rebootMounts(name string) device.Reboot {
	return func(mounts []container.Mount, unmounts []string) error {
		mon := cf.host.monitor(name)
		if mon == nil {
			return nil
		}

		return mon.SetMounts(specMounts(mounts), cf.host.unmountsFor(name, unmounts))
	}
}

// records keeps the NICs' volatile keys in the instance's row (device.Records).
type records struct{ db *db.DB }

func (r records) Volatile(ctx context.Context, name string) (map[string]string, error) {
	var inst *db.Instance
	err := r.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		inst, err = tx.GetInstance(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	return inst.Config, nil
}

func (r records) SetVolatile(ctx context.Context, name string, set map[string]string, unset []string) error {
	return r.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceConfig(ctx, name, set, unset)
	})
}
