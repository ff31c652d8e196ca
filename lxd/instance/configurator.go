package instance

import (
	"log/slog"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// configHost is what the configurator uses of the instance manager: the locks, running
// instances' monitors, an instance's id map, the device context and unmounts of its
// spec, and events.
type configHost interface {
	lock(name string) func()
	monitor(name string) *container.Monitor
	idsOf(inst *db.Instance) (idmap.Set, error)
	deviceInstance(inst *db.Instance, ids idmap.Set, rootfs string) *device.Instance
	unmountsFor(name string, devices []string) []string
	event(action, name string, ctx map[string]any)
}

// renderer renders an instance as the API shows it (*View): what its ETag covers.
type renderer interface {
	render(inst *db.Instance, profiles map[string]*db.Profile, full bool) api.InstanceFull
}

// Configurator changes the manager's instances' settings: validated updates, applied
// live to running containers (cgroup limits, device hotplug, the root disk size in the
// pool), and profile changes checked against and applied to the instances using them
// (Manager.Configurator). It owns the rules of limits.* and of the root disk size.
type Configurator struct {
	host configHost
	view renderer

	db      *db.DB
	pools   poolSet      // the pool each instance lives on: its root disk size
	parent  string       // Config.CgroupParent
	devices *device.Host // the devices of every instance (lxd/device)
	log     *slog.Logger
}

func newConfigurator(m *Manager, view renderer) *Configurator {
	return &Configurator{host: m, view: view, db: m.cfg.DB, pools: m.pools,
		parent: m.cfg.CgroupParent, devices: m.devices, log: m.log}
}
