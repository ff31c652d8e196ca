package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/setup"
	"github.com/berth-dev/berth/shared/api"
)

// Reboot gives the monitor of a running instance the devices' mounts and unmounts for its
// next in-place reboot, which starts from the monitor's spec and not from the database.
type Reboot func(mounts []setup.Mount, unmounts []string) error

// CheckHotplug refuses a change to a running container's devices that a device type
// cannot make live (a 400 naming the device), before anything is touched.
func CheckHotplug(old, new map[string]map[string]string) error {
	removed, added := changes(old, new)
	for _, list := range [][]string{removed, added} {
		for _, name := range list {
			conf := new[name]
			if conf == nil {
				conf = old[name]
			}

			_, ok := types[conf["type"]]
			if !ok || conf["type"] == "unix-block" || (conf["type"] == "disk" && IsRoot(conf)) {
				return api.StatusErrorf(http.StatusBadRequest, "device %q (%s): changing it %s", name, conf["type"], errRequiresRestart)
			}
		}
	}

	return nil
}

// Hotplug brings a running container (init pid) from old to new devices: NICs first
// (hotplugNICs: an error there stops here), then every other removed or changed device is
// detached and every new or changed one attached, and the devices are staged again for
// the next reboot, which reboot hands to the monitor. Errors of the other devices are
// joined, the rest still applied.
func (h *Host) Hotplug(ctx context.Context, in *Instance, pid int, old, new map[string]map[string]string, reboot Reboot) error {
	err := h.hotplugNICs(ctx, in, pid, old, new)
	if err != nil {
		return err
	}

	old, new = withoutNICs(old), withoutNICs(new)
	removed, added := changes(old, new)
	var errs []error
	for _, dev := range removed {
		err := types[old[dev]["type"]].detach(h.run(in, dev, old[dev], pid))
		if err != nil {
			errs = append(errs, fmt.Errorf("removing device %q: %w", dev, err))
		}
	}

	if len(added) > 0 {
		err := makeStageDir(in)
		if err != nil {
			errs = append(errs, err)
		}
	}

	for _, dev := range added {
		err := types[new[dev]["type"]].attach(h.run(in, dev, new[dev], pid))
		if err != nil {
			errs = append(errs, fmt.Errorf("adding device %q: %w", dev, err))
		}
	}

	// Config-only updates (limits, ...) come through here too: nothing to restage.
	if len(removed) > 0 || len(added) > 0 {
		err := h.restage(in, removed, old, new, reboot)
		if err != nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}

// restage stages the devices of a running instance again after a live change and hands
// their mounts to reboot.
func (h *Host) restage(in *Instance, removed []string, old, new map[string]map[string]string, reboot Reboot) error {
	for _, dev := range removed {
		if old[dev]["type"] != "proxy" {
			unstage(h.run(in, dev, old[dev], 0).stagePath())
		}
	}

	mounts, _, err := h.stage(in, new)
	if err != nil {
		return fmt.Errorf("staging devices for reboots: %w", err)
	}

	err = reboot(h.specMounts(in, mounts), h.unmounts(in, mounts))
	if err != nil {
		return fmt.Errorf("giving the monitor the devices for reboots: %w", err)
	}

	return nil
}

// changes lists the devices that differ between two expanded device maps.
func changes(old, new map[string]map[string]string) (removed, added []string) {
	for name, d := range old {
		n, ok := new[name]
		if !ok || !sameMap(d, n) {
			removed = append(removed, name)
		}
	}

	for name, d := range new {
		o, ok := old[name]
		if !ok || !sameMap(d, o) {
			added = append(added, name)
		}
	}

	sort.Strings(removed)
	sort.Strings(added)
	return removed, added
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}

	for k, v := range a {
		w, ok := b[k]
		if !ok || w != v {
			return false
		}
	}

	return true
}
