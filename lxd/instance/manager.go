// Package instance holds the life cycle of Berth's instances: create, start, stop, delete,
// and their API view. It sits between the REST handlers and the subsystems (db, storage,
// container runtime, images) and is the only place that combines them.
package instance

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
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

// Config wires a Manager to the daemon's subsystems.
type Config struct {
	Dir      string // BERTH_DIR
	DB       *db.DB
	Pool     storage.Driver
	PoolName string
	Exe      string // sealed copy of the daemon binary used to start monitors
	IDs      IDRange
	Images   ImageSource
	Events   Lifecycle
	Log      *slog.Logger
	Networks *network.Manager // nil: instances cannot have NICs
	// CgroupParent holds this daemon's container cgroups (cgroup.ParentFor
	// of Dir); "" is cgroup.DefaultParent.
	CgroupParent string
}

// ImageSource gives the daemon's image store to the manager.
type ImageSource interface {
	// EnsureInPool unpacks image fp into the storage pool if it is not there yet.
	EnsureInPool(ctx context.Context, fp string) error
	// MetaDir is the directory holding the image's metadata.yaml and templates/.
	MetaDir(fp string) string
}

// Manager runs the instances of this daemon.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	monitors map[string]*container.Monitor // running instances
	locks    map[string]*sync.Mutex        // per-instance operation locks
	creating map[string]bool               // names reserved by an unfinished create
	idBusy   map[int64]bool                // id bases reserved by unfinished creates

	pruneKick chan struct{} // wakes RunSnapshotPruner early

	work workSet // tree operations per instance, cancelled by Delete

	nicMu     sync.Mutex
	following map[*container.Monitor]bool // monitors whose reboots nicsFollow watches
}

// NewManager returns a Manager; call Reconcile before serving requests.
func NewManager(cfg Config) *Manager {
	dir := cfg.Dir
	daemonDir.Store(&dir)

	return &Manager{
		cfg:      cfg,
		log:      cfg.Log,
		monitors: map[string]*container.Monitor{},
		locks:    map[string]*sync.Mutex{},
		creating: map[string]bool{},
		idBusy:   map[int64]bool{},

		pruneKick: make(chan struct{}, 1),
	}
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

// instanceDir holds an instance's own files: its image metadata and templates, and the
// runtime directory of its monitor.
func (m *Manager) instanceDir(name string) string {
	return filepath.Join(m.cfg.Dir, "instances", name)
}

func (m *Manager) runDir(name string) string {
	return filepath.Join(m.instanceDir(name), "run")
}

func (m *Manager) event(action, name string, ctx map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.SendLifecycle("default", action, "/1.0/instances/"+name, ctx)
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
