package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
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
	host  viewHost
	db    *db.DB
	pool  storage.Driver // the root disk's usage
	snaps *Snapshots     // a full instance's snapshots
}

func newView(m *Manager, snaps *Snapshots) *View {
	return &View{host: m, db: m.cfg.DB, pool: m.cfg.Pool, snaps: snaps}
}
