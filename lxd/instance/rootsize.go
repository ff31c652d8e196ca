package instance

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// A root disk "size" is either enforced by the storage pool (storage.Driver.RootQuota) or
// refused: setting or changing it where the pool cannot enforce it is a 400 naming the
// pool and the reason, at create, copy, import, instance update and profile update, and
// nothing changes. An instance that already had a size from before starts as it did, with
// a warning in the log; edits that leave its size as it was are not refused.

// rootDiskKey returns key of the root disk (the disk device at path "/") in an expanded
// device map, "" when there is none.
func rootDiskKey(devices map[string]map[string]string, key string) string {
	for _, d := range devices {
		if d["type"] == "disk" && device.IsRoot(d) {
			return d[key]
		}
	}

	return ""
}

// rootDiskSize returns the size key of the root disk (the disk device at path "/") in an
// expanded device map, "" when there is none.
func rootDiskSize(devices map[string]map[string]string) string {
	return rootDiskKey(devices, "size")
}

// withoutRootSize returns devices without the root disk's size, which changes live
// through the pool (applyRootChange) rather than by hotplug. An empty size (the stock
// lxc's device unset sends one) goes too.
func withoutRootSize(devices map[string]map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(devices))
	for name, d := range devices {
		_, sized := d["size"]
		if d["type"] == "disk" && device.IsRoot(d) && sized {
			d = copyMap(d)
			delete(d, "size")
		}

		out[name] = d
	}

	return out
}

// validateRootSize checks the size key of a root disk device.
func validateRootSize(conf map[string]string) error {
	if conf["size"] == "" {
		return nil
	}

	_, err := ParseBytes(conf["size"])
	if err != nil {
		return fmt.Errorf("\"size\": %w", err)
	}

	return nil
}

// checkRootSize refuses, for an instance's expanded devices, a root disk on a pool that
// cannot take it or that moves it (checkRootPool), and a size the pool cannot enforce
// (checkSize). name is the instance, "" when it has no storage yet.
func (cf *Configurator) checkRootSize(name string, oldDevices, devices map[string]map[string]string) error {
	err := cf.checkRootPool(oldDevices, devices)
	if err != nil {
		return err
	}

	return cf.checkSize(name, oldDevices, devices)
}

// checkRootPool refuses a root disk on a pool that does not exist or did not load, and,
// for an existing instance (oldDevices not nil), a change of the pool it lives on, by its
// own devices or its profiles': its storage would stay where the config says it is not.
// LXD refuses it too; a copy (lxc copy --storage) moves an instance between pools.
func (cf *Configurator) checkRootPool(oldDevices, devices map[string]map[string]string) error {
	pool := cf.pools.nameOf(devices)
	if oldDevices != nil {
		old := cf.pools.nameOf(oldDevices)
		if old != pool {
			return api.StatusErrorf(http.StatusBadRequest, "the root disk's pool cannot change from %q to %q: copy the instance to the other pool instead (lxc copy --storage, or lxc move --storage)", old, pool)
		}

		return nil
	}

	_, err := cf.pools.pools.Driver(pool)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return api.StatusErrorf(http.StatusBadRequest, "root disk: storage pool %q does not exist", pool)
	}

	if err != nil {
		return fmt.Errorf("root disk: %w", err)
	}

	return nil
}

// checkSize refuses a root disk size that devices set or change from oldDevices (nil
// for a new instance) where the pool cannot enforce it.
func (cf *Configurator) checkSize(name string, oldDevices, devices map[string]map[string]string) error {
	size := rootDiskSize(devices)
	if size == "" || (oldDevices != nil && size == rootDiskSize(oldDevices)) {
		return nil
	}

	pool, err := cf.pools.of(devices)
	if err != nil {
		return err
	}

	return quotaRefusal(cf.pools.nameOf(devices), pool.RootQuota(name))
}

// quotaRefusal turns pool's reason into the API's 400.
func quotaRefusal(pool string, err error) error {
	var qe *storage.QuotaError
	if errors.As(err, &qe) {
		return api.StatusErrorf(http.StatusBadRequest, "pool %s (%s on %s at %s) cannot enforce a root disk size: %s", pool, qe.Driver, qe.FS, qe.Dir, qe.Reason)
	}

	return err
}

// applyRootSize gives the pool the root disk size of devices (none: no limit). Where the
// pool cannot enforce sizes, a size (set before this check existed) is logged and
// otherwise ignored, so that such an instance still starts.
func (cf *Configurator) applyRootSize(name string, devices map[string]map[string]string) error {
	size := rootDiskSize(devices)
	pool, err := cf.pools.of(devices)
	if err != nil {
		return err
	}

	err = pool.RootQuota(name)
	var qe *storage.QuotaError
	if errors.As(err, &qe) {
		if size != "" {
			cf.log.Warn("root disk size is not enforced", "instance", name, "size", size, "err", quotaRefusal(cf.pools.nameOf(devices), err))
		}

		return nil
	}

	if err != nil {
		return err
	}

	var limit int64
	if size != "" {
		limit, err = ParseBytes(size)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "root disk size: %v", err)
		}
	}

	err = pool.SetRootQuota(name, limit)
	if err != nil {
		return fmt.Errorf("setting root disk size of %q: %w", name, err)
	}

	return nil
}
