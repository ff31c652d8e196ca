package instance

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/lxcfs"
	"github.com/berth-dev/berth/shared/api"
)

// errRequiresRestart is returned when a device change cannot be made to a running
// container; the update is refused with 400 and nothing is applied.
var errRequiresRestart = errors.New("requires restart")

// deviceRun is what a device acts on: one device of one instance.
type deviceRun struct {
	m       *Manager
	inst    string            // instance name
	name    string            // device name
	conf    map[string]string // the device's expanded config
	ids     idmap.Set
	initPID int // the container's init on the host, 0 before it runs
}

// stageDir is the host directory holding the device's staged mount or its pid file.
func (r *deviceRun) stageDir() string {
	return filepath.Join(r.m.instanceDir(r.inst), "devices")
}

func (r *deviceRun) stagePath() string {
	return filepath.Join(r.stageDir(), r.name)
}

// device is one device type. Types without an entry here (nic, which the network code
// provides) are accepted and left to their owner; the same five steps are expected of
// them.
type device interface {
	// validate checks the device's keys; errors name the key.
	validate(conf map[string]string) error
	// prepare runs before the container starts and returns mounts for its spec.
	prepare(r *deviceRun) ([]container.Mount, error)
	// started runs once the container's init runs (processes living beside it).
	started(r *deviceRun) error
	// attach adds the device to a running container, or returns errRequiresRestart.
	attach(r *deviceRun) error
	// detach removes the device from a running container, or returns errRequiresRestart.
	detach(r *deviceRun) error
}

// deviceTypes is the static table of the device types implemented here.
var deviceTypes = map[string]device{
	"disk":       diskDevice{},
	"unix-char":  unixDevice{char: true},
	"unix-block": unixDevice{},
	"proxy":      proxyDevice{},
	"none":       noneDevice{},
}

// validateDevice checks one device's keys against its type (ValidateDevices has checked
// the type exists).
func validateDevice(name string, conf map[string]string) error {
	d, ok := deviceTypes[conf["type"]]
	if !ok {
		return nil
	}

	return d.validate(conf)
}

type noneDevice struct{}

func (noneDevice) validate(conf map[string]string) error         { return onlyKeys(conf) }
func (noneDevice) prepare(*deviceRun) ([]container.Mount, error) { return nil, nil }
func (noneDevice) started(*deviceRun) error                      { return nil }
func (noneDevice) attach(*deviceRun) error                       { return nil }
func (noneDevice) detach(*deviceRun) error                       { return nil }

// onlyKeys refuses any key but type and the allowed ones.
func onlyKeys(conf map[string]string, allowed ...string) error {
	for k := range conf {
		if k == "type" {
			continue
		}

		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}

		if !found {
			return fmt.Errorf("unknown key %q", k)
		}
	}

	return nil
}

// containerPath checks a path inside the container: absolute, clean, not the root.
func containerPath(key, p string) error {
	if p == "" {
		return fmt.Errorf("%q is required", key)
	}

	if !filepath.IsAbs(p) {
		return fmt.Errorf("%q must be an absolute path, not %q", key, p)
	}

	if filepath.Clean(p) == "/" {
		return fmt.Errorf("%q cannot be /", key)
	}

	return nil
}

// prepareDevices runs every device's prepare step before a start and returns the extra
// mounts and a cleanup for what was staged on the host (run it once the container has
// its own copy, or on failure).
func (m *Manager) prepareDevices(name string, ids idmap.Set, devices map[string]map[string]string) ([]container.Mount, func(), error) {
	err := m.makeStageDir(name, ids)
	if err != nil {
		return nil, nil, err
	}

	var mounts []container.Mount
	var staged []string
	cleanup := func() {
		for _, p := range staged {
			unstage(p)
		}
	}

	for _, dev := range sortedDevices(devices) {
		d, ok := deviceTypes[devices[dev]["type"]]
		if !ok {
			continue
		}

		r := &deviceRun{m: m, inst: name, name: dev, conf: devices[dev], ids: ids}
		ms, err := d.prepare(r)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("preparing device %q: %w", dev, err)
		}

		if len(ms) > 0 {
			staged = append(staged, r.stagePath())
		}

		mounts = append(mounts, ms...)
	}

	return mounts, cleanup, nil
}

// startedDevices runs every device's started step; failures are logged, the container
// runs on (as LXD does for a proxy whose port is taken, the error is visible in the log).
func (m *Manager) startedDevices(name string, ids idmap.Set, pid int, devices map[string]map[string]string) {
	for _, dev := range sortedDevices(devices) {
		d, ok := deviceTypes[devices[dev]["type"]]
		if !ok {
			continue
		}

		r := &deviceRun{m: m, inst: name, name: dev, conf: devices[dev], ids: ids, initPID: pid}
		err := d.started(r)
		if err != nil {
			m.log.Warn("starting device", "instance", name, "device", dev, "err", err)
		}
	}
}

// deviceChanges lists the devices that differ between two expanded device maps.
func deviceChanges(old, new map[string]map[string]string) (removed, added []string) {
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

// checkHotplug refuses a change to a running container's devices that a device type
// cannot make live, before anything is touched.
func checkHotplug(old, new map[string]map[string]string) error {
	// The root disk's size changes through the pool (applyRootChange).
	old, new = withoutRootSize(old), withoutRootSize(new)
	removed, added := deviceChanges(old, new)
	for _, list := range [][]string{removed, added} {
		for _, name := range list {
			conf := new[name]
			if conf == nil {
				conf = old[name]
			}

			_, ok := deviceTypes[conf["type"]]
			if conf["type"] == "nic" {
				continue // hotplugNICs
			}

			if !ok || conf["type"] == "unix-block" || (conf["type"] == "disk" && conf["path"] == "/") {
				return api.StatusErrorf(http.StatusBadRequest, "device %q (%s): changing it %s", name, conf["type"], errRequiresRestart)
			}
		}
	}

	return nil
}

// hotplugDevices detaches removed or changed devices and attaches new or changed ones.
func (m *Manager) hotplugDevices(name string, ids idmap.Set, pid int, old, new map[string]map[string]string) error {
	old, new = withoutNICs(old), withoutNICs(new) // hotplugNICs
	// The root disk's size changes through the pool (applyRootChange).
	old, new = withoutRootSize(old), withoutRootSize(new)
	removed, added := deviceChanges(old, new)
	var errs []error
	for _, dev := range removed {
		r := &deviceRun{m: m, inst: name, name: dev, conf: old[dev], ids: ids, initPID: pid}
		err := deviceTypes[old[dev]["type"]].detach(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing device %q: %w", dev, err))
		}
	}

	if len(added) > 0 {
		err := m.makeStageDir(name, ids)
		if err != nil {
			errs = append(errs, err)
		}
	}

	for _, dev := range added {
		r := &deviceRun{m: m, inst: name, name: dev, conf: new[dev], ids: ids, initPID: pid}
		err := deviceTypes[new[dev]["type"]].attach(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("adding device %q: %w", dev, err))
		}
	}

	// Config-only updates (limits, ...) come through here too: nothing to restage.
	if len(removed) > 0 || len(added) > 0 {
		err := m.restageDevices(name, ids, removed, old, new)
		if err != nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}

// restageDevices stages the devices of a running instance again after a live change and
// gives its monitor the mounts of the next in-place reboot, which starts from the
// monitor's spec and not from the database.
func (m *Manager) restageDevices(name string, ids idmap.Set, removed []string, old, new map[string]map[string]string) error {
	for _, dev := range removed {
		r := &deviceRun{m: m, inst: name, name: dev, conf: old[dev], ids: ids}
		if old[dev]["type"] != "proxy" {
			unstage(r.stagePath())
		}
	}

	mounts, _, err := m.prepareDevices(name, ids, new)
	if err != nil {
		return fmt.Errorf("staging devices for reboots: %w", err)
	}

	mon := m.monitor(name)
	if mon == nil {
		return nil
	}

	err = mon.SetMounts(m.specMounts(name, mounts), m.unmountsFor(name, mounts))
	if err != nil {
		return fmt.Errorf("giving the monitor the devices for reboots: %w", err)
	}

	return nil
}

// specMounts is Spec.Mounts for an instance with these device mounts: lxcfs's files, the
// hotplug directory, then the devices.
func (m *Manager) specMounts(name string, mounts []container.Mount) []container.Mount {
	out := append(lxcfs.Binds(lxcfs.Dir()), m.hotplugMount(name))
	return append(out, mounts...)
}

// unmountsFor is Spec.Unmounts for an instance with these device mounts: the staged
// ones (a device node is not a mount; unmounting it is a harmless no-op), the hotplug
// directory, then the storage pool's.
func (m *Manager) unmountsFor(name string, mounts []container.Mount) []string {
	out := []string{m.hotplugDir(name)}

	stage := (&deviceRun{m: m, inst: name}).stageDir() + "/"
	for _, mnt := range mounts {
		if strings.HasPrefix(mnt.Source, stage) {
			out = append(out, mnt.Source)
		}
	}

	return append(out, m.cfg.Pool.Mountpoints(name)...)
}

// unstageDevices removes what the devices of a stopped instance left staged: mount
// points (unmounted by the monitor) and device nodes. Proxies' pid and log files stay.
func (m *Manager) unstageDevices(name string) {
	removeHotplugDir(m.hotplugDir(name))

	dir := (&deviceRun{m: m, inst: name}).stageDir()

	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			unstage(filepath.Join(dir, e.Name()))
		}
	}
}

func sortedDevices(devices map[string]map[string]string) []string {
	names := make([]string, 0, len(devices))
	for n := range devices {
		names = append(names, n)
	}

	// Shallow paths first, so a disk at /srv is mounted before one at /srv/data.
	sort.Slice(names, func(i, j int) bool {
		pi, pj := devices[names[i]]["path"], devices[names[j]]["path"]
		ci, cj := strings.Count(pi, "/"), strings.Count(pj, "/")
		if ci != cj {
			return ci < cj
		}

		return names[i] < names[j]
	})

	return names
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
