package instance

import (
	"context"
	"log/slog"
	"sync"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// createHost is what the creator uses of the instance manager: name reservations, the
// locks and the record of tree work (cancelled by Delete), the reads of one instance,
// running instances' monitors and freezing, instance directories, and events.
type createHost interface {
	reserveName(name string) (func(), error)
	exists(ctx context.Context, name string) (bool, error)
	lock(name string) func()
	track(ctx context.Context, name string) (context.Context, func())
	load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error)
	idsOf(inst *db.Instance) (idmap.Set, error)
	monitor(name string) *container.Monitor
	frozen(name string, fn func() error) error
	instanceDir(name string) string
	scratchDir() string
	event(action, name string, ctx map[string]any)
	forgetMoved(name string)
}

// rootSizes is the root disk size policy (*Configurator): refused where the pool cannot
// enforce it, given to the pool where it can.
type rootSizes interface {
	checkRootSize(name string, oldDevices, devices map[string]map[string]string) error
	applyRootSize(name string, devices map[string]map[string]string) error
}

// snapshotReader reads one snapshot and renders rows (*snapshot.Snapshots).
type snapshotReader interface {
	Get(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error)
	Render(s *db.Snapshot, profiles map[string]*db.Profile) api.InstanceSnapshot
}

// Creator is the creation pipeline and its reverse: it makes instances (Create, Copy,
// CreateFromTrees for imports and migrations, all through newInstance) and gives read
// access to their trees for exports (ReadTrees, Publish) (Manager.Creator).
type Creator struct {
	host  createHost
	sizes rootSizes
	view  renderer
	snaps snapshotReader

	db     *db.DB
	pools  poolSet // the pool each instance lives on
	images ImageSource
	ids    IDRange
	member int64 // this host's member id: new instances are its
	log    *slog.Logger

	mu     sync.Mutex
	idBusy map[int64]bool // id bases reserved by unfinished creates
}

func newCreator(m *Manager, sizes rootSizes, view renderer, snaps snapshotReader) *Creator {
	return &Creator{host: m, sizes: sizes, view: view, snaps: snaps, db: m.cfg.DB, pools: m.pools,
		images: m.cfg.Images, ids: m.cfg.IDs, member: m.member(), log: m.log, idBusy: map[int64]bool{}}
}
