package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/lxd/storage"
)

// snapshotHost is what lxd/snapshot uses of the manager (snapshot.Host): thin methods
// over its locks, tree work, monitors and Runner.
type snapshotHost struct{ m *Manager }

var _ snapshot.Host = snapshotHost{}

func (h snapshotHost) Lock(name string) func() { return h.m.lock(name) }

func (h snapshotHost) Member() int64 { return h.m.member() }

func (h snapshotHost) Track(ctx context.Context, name string) (context.Context, func()) {
	return h.m.track(ctx, name)
}

func (h snapshotHost) Load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error) {
	return h.m.load(ctx, name)
}

func (snapshotHost) Expand(inst *db.Instance, profiles map[string]*db.Profile) (map[string]string, map[string]map[string]string) {
	return Expand(inst, profiles)
}

func (snapshotHost) CheckProject(ctx context.Context, tx *db.Tx, next *db.Instance) error {
	return checkProject(ctx, tx, next)
}

func (h snapshotHost) Running(name string) bool { return h.m.monitor(name) != nil }

func (h snapshotHost) Frozen(name string, fn func() error) error { return h.m.frozen(name, fn) }

// Kill stops the instance as a restore does: forced, no timeout (LXD kills it).
func (h snapshotHost) Kill(ctx context.Context, name string) error {
	return h.m.run.stop(ctx, name, 0, true)
}

func (h snapshotHost) Start(ctx context.Context, name string) error { return h.m.run.start(ctx, name) }

func (h snapshotHost) Event(action, name string, ctx map[string]any) { h.m.event(action, name, ctx) }

func (h snapshotHost) Pool(ctx context.Context, name string) (storage.Driver, error) {
	return h.m.storageOf(ctx, name)
}
