package instance

import (
	"context"
	"log/slog"
	"sync"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// runHost is what the runner uses of the instance manager: the locks, the registry of
// running instances' monitors, the reads of one instance, its directories, the device
// context of its spec, events, and the delete of an ephemeral instance.
type runHost interface {
	lock(name string) func()
	monitor(name string) *container.Monitor
	setMonitor(name string, mon *container.Monitor)
	dropMonitor(name string, mon *container.Monitor)
	loadExpanded(ctx context.Context, name string) (*expanded, error)
	idsOf(inst *db.Instance) (idmap.Set, error)
	exists(ctx context.Context, name string) (bool, error)
	instanceDir(name string) string
	runDir(name string) string
	deviceInstance(inst *db.Instance, ids idmap.Set, rootfs string) *device.Instance
	event(action, name string, ctx map[string]any)
	// Preconditions: the instance lock is held.
	delete(ctx context.Context, name string) error
}

// runSettings is what a start takes of the configurator (*Configurator): the root disk
// size and the cgroup limits of an expanded config.
type runSettings interface {
	applyRootSize(name string, devices map[string]map[string]string) error
	limitsOf(name string, config map[string]string) (container.Limits, error)
}

// instanceLister lists this member's instances for autostart (*View).
type instanceLister interface {
	ListLocal(ctx context.Context, full bool) ([]api.InstanceFull, error)
}

// Runner runs the manager's instances: start, stop, restart, freeze, the monitors'
// watch for stops the daemon did not ask for, the re-attachment of NICs and devices
// after reboots inside, and at daemon start Reconcile, Resume and Autostart
// (Manager.Runner).
type Runner struct {
	host runHost
	conf runSettings
	view instanceLister

	db           *db.DB
	pools        poolSet           // the pool each instance lives on
	devices      *device.Host      // the devices of every instance (lxd/device)
	networks     *network.Manager  // nil: instances cannot have NICs
	spares       *container.Spares // a monitor started ahead of the next start
	cgroupParent string            // Config.CgroupParent
	dir          string            // BERTH_DIR
	member       int64             // this host's member id: Reconcile's rows
	log          *slog.Logger

	nicMu     sync.Mutex
	following map[*container.Monitor]bool // monitors whose reboots followReboots watches

	// autostartMu is held by an autostart's start, checks and all, so that an evacuation
	// can wait one out (AutostartBarrier).
	autostartMu sync.Mutex

	resumeMu    sync.Mutex
	resumeQueue []resumeItem // instances whose port filters Resume refreshes, in order
	resuming    bool         // refreshQueued runs
}

func newRunner(m *Manager, conf runSettings, view instanceLister) *Runner {
	return &Runner{host: m, conf: conf, view: view, db: m.cfg.DB, pools: m.pools, devices: m.devices,
		networks: m.cfg.Networks, spares: container.NewSpares(m.cfg.Exe, m.log),
		cgroupParent: m.cfg.CgroupParent, dir: m.cfg.Dir, member: m.member(), log: m.log}
}
