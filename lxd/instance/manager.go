// Package instance holds the life cycle of Berth's instances: create, start, stop, delete,
// and their API view. It sits between the REST handlers and the subsystems (db, storage,
// container runtime, images) and is the only place that combines them.
package instance

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Lifecycle receives lifecycle events (instance-started, ...).
type Lifecycle interface {
	SendLifecycle(project, action, source string, ctx map[string]any)
}

// IDRange is root's subordinate id range on this host.
type IDRange struct {
	UIDStart, UIDCount int64
	GIDStart, GIDCount int64
}

// at is the id map of an instance whose range starts at host uid base.
func (r IDRange) at(base int64) idmap.Set {
	return idmap.Set{HostUID: base, HostGID: r.GIDStart + (base - r.UIDStart), Size: idmap.DefaultSize}
}

// Config wires a Manager to the daemon's subsystems.
type Config struct {
	Dir      string // BERTH_DIR
	DB       *db.DB
	Pools    Pools  // the storage pools instances live on (lxd/pools)
	PoolName string // the default pool: instances whose root disk names no pool
	Exe      string // sealed copy of the daemon binary used to start monitors
	IDs      IDRange
	Images   ImageSource
	Events   Lifecycle
	Log      *slog.Logger
	Networks *network.Manager // nil: instances cannot have NICs
	// CgroupParent holds this daemon's container cgroups (cgroup.ParentFor
	// of Dir); "" is cgroup.DefaultParent.
	CgroupParent string
	// OnDelete removes what other services keep of a deleted instance (its backups).
	OnDelete func(name string)
	// MemberID is this host's member (members.id, issue 16); 0 is 1, a host never
	// clustered. In a cluster the database holds every member's instances: what acts on
	// the host (reconcile, autostart, resume, metrics) takes this member's only, and new
	// instances are created on it.
	MemberID int64
}

// ImageSource gives the daemon's image store to the manager.
type ImageSource interface {
	// EnsureInPool unpacks image fp into pool if it is not there yet.
	EnsureInPool(ctx context.Context, fp string, pool storage.Driver) error
	// MetaDir is the directory holding the image's metadata.yaml and templates/.
	MetaDir(fp string) string
}

// Manager is the registry of this daemon's instances and the entry point to the services
// that run them. It keeps what they share: the running instances' monitors, the
// per-instance locks, the names reserved by unfinished creates, the tree work that Delete
// cancels, and the reads of one instance. Each service reaches it through a narrow
// interface of its own (runHost, configHost, createHost, viewHost; snapshotHost adapts it
// to lxd/snapshot's Host).
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	monitors map[string]*container.Monitor // running instances
	locks    map[string]*sync.Mutex        // per-instance operation locks
	creating map[string]bool               // names reserved by an unfinished create

	work workSet // tree operations per instance, cancelled by Delete

	pools poolSet // the pool each instance lives on

	devices *device.Host // the devices of every instance (lxd/device)

	view   *View
	run    *Runner
	conf   *Configurator
	create *Creator
	snaps  *snapshot.Snapshots
}

// NewManager returns a Manager; call Runner().Reconcile before serving requests.
func NewManager(cfg Config) *Manager {
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Log,
		monitors: map[string]*container.Monitor{},
		locks:    map[string]*sync.Mutex{},
		creating: map[string]bool{},
		pools:    poolSet{pools: cfg.Pools, def: cfg.PoolName},

		devices: device.NewHost(device.Host{Dir: cfg.Dir, Exe: cfg.Exe, Networks: cfg.Networks, Records: records{cfg.DB}, Log: cfg.Log}),
	}

	// Nothing uses the scratch directory yet: what a killed daemon left there goes.
	if cfg.Dir != "" {
		scratch := m.scratchDir()
		err := os.RemoveAll(scratch)
		if err == nil {
			err = os.MkdirAll(scratch, 0o700)
		}

		if err != nil {
			cfg.Log.Warn("emptying the scratch directory", "dir", scratch, "err", err)
		}
	}

	m.snaps = snapshot.New(snapshotHost{m}, cfg.DB, cfg.Log) // a restore stops and starts through m.run
	m.view = newView(m, m.snaps)
	m.conf = newConfigurator(m, m.view)
	m.run = newRunner(m, m.conf, m.view)
	m.create = newCreator(m, m.conf, m.view, m.snaps)
	return m
}

// Snapshots runs the instances' snapshots.
func (m *Manager) Snapshots() *snapshot.Snapshots { return m.snaps }

// View renders the instances and their state for the API.
func (m *Manager) View() *View { return m.view }

// Runner starts, stops, freezes and follows the instances.
func (m *Manager) Runner() *Runner { return m.run }

// Configurator changes the instances' settings and applies profile changes.
func (m *Manager) Configurator() *Configurator { return m.conf }

// Creator makes instances (create, copy, import) and reads their trees for exports.
func (m *Manager) Creator() *Creator { return m.create }

// member is this host's member id (Config.MemberID, 1 when unset).
func (m *Manager) member() int64 {
	if m.cfg.MemberID == 0 {
		return db.SelfMemberID
	}

	return m.cfg.MemberID
}

// lock serialises state changes of one instance.
func (m *Manager) lock(name string) func() {
	m.mu.Lock()
	l := m.locks[name]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[name] = l
	}

	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (m *Manager) monitor(name string) *container.Monitor {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.monitors[name]
}

// setMonitor records the monitor of an instance that runs.
func (m *Manager) setMonitor(name string, mon *container.Monitor) {
	m.mu.Lock()
	m.monitors[name] = mon
	m.mu.Unlock()
}

// dropMonitor forgets an instance's monitor unless another has replaced it.
func (m *Manager) dropMonitor(name string, mon *container.Monitor) {
	m.mu.Lock()
	if m.monitors[name] == mon {
		delete(m.monitors, name)
	}

	m.mu.Unlock()
}

// instanceDir holds an instance's own files: its image metadata and templates, and the
// runtime directory of its monitor.
func (m *Manager) instanceDir(name string) string {
	return filepath.Join(m.cfg.Dir, "instances", name)
}

// scratchDir holds the daemon's temporary directories (a received tree's metadata, a
// publish's): in the state directory, and emptied at start (NewManager), so that a
// daemon killed while it held one leaves nothing behind for long.
func (m *Manager) scratchDir() string {
	return filepath.Join(m.cfg.Dir, "tmp")
}

func (m *Manager) runDir(name string) string {
	return filepath.Join(m.instanceDir(name), "run")
}

func (m *Manager) event(action, name string, ctx map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.SendLifecycle(project.Of(name), action, "/1.0/instances/"+url.PathEscape(project.Name(name)), ctx)
	}
}

// LogPath is the monitor's log of an instance.
func (m *Manager) LogPath(name string) string {
	return filepath.Join(m.runDir(name), "monitor.log")
}

// reserveName holds a name for an unfinished create, copy or import (409 while another
// holds it); release drops it once the DB row exists or the attempt failed.
func (m *Manager) reserveName(name string) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.creating[name] {
		return nil, api.StatusErrorf(http.StatusConflict, "instance %q is being created", name)
	}

	m.creating[name] = true
	return func() {
		m.mu.Lock()
		delete(m.creating, name)
		m.mu.Unlock()
	}, nil
}
