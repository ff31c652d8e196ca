package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// viewHost is what the view uses of the instance manager: an instance's row and
// profiles, whether it exists, and its monitor while it runs.
type viewHost interface {
	load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error)
	exists(ctx context.Context, name string) (bool, error)
	monitor(name string) *container.Monitor
}

// View renders the manager's instances for the API: their rows expanded with their
// profiles, their runtime state, and (full) their snapshots (Manager.View).
type View struct {
	host         viewHost
	db           *db.DB
	pools        poolSet        // the root disk's usage
	snaps        snapshotLister // a full instance's snapshots
	cgroupParent string         // Config.CgroupParent: where the cgroup files are read
	cache        *stateCache    // the running instances' gathered state
	member       int64          // this host's member id: ListLocal's filter
}

// snapshotLister lists an instance's snapshots, or every instance's (*snapshot.Snapshots).
type snapshotLister interface {
	List(ctx context.Context, name string) ([]api.InstanceSnapshot, error)
	ListAll(ctx context.Context) (map[string][]api.InstanceSnapshot, error)
}

func newView(m *Manager, snaps snapshotLister) *View {
	vw := &View{host: m, db: m.cfg.DB, pools: m.pools, snaps: snaps, cgroupParent: m.cfg.CgroupParent, member: m.member()}
	vw.cache = newStateCache(StateTTL, vw.gather)
	return vw
}
