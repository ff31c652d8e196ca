package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// Trees is read access to one instance's trees, valid inside the function ReadTrees
// runs: what an export (a backup, a publish, a migration source) needs of an instance.
type Trees struct {
	Instance  api.Instance           // as the API renders it
	Snapshots []api.InstanceSnapshot // oldest first; empty unless ReadTrees was asked for them
	IDs       idmap.Set              // the instance's id range, to map host owners back to the container's
	MetaDir   string                 // holds the instance's image metadata.yaml and templates/
	Pool      string                 // the storage pool the instance lives on
	Backend   string                 // that pool's storage driver

	ct   *Creator
	name string
	pool storage.Driver
}

// ReadTrees runs fn with read access to instance name's trees, holding the instance lock
// so that nothing else changes them (a running container's own writes aside: Root takes
// care of those). Deleting the instance cancels the context fn gets, rather than waiting
// for it.
func (ct *Creator) ReadTrees(ctx context.Context, name string, snapshots bool, fn func(ctx context.Context, t *Trees) error) error {
	ctx, done := ct.host.track(ctx, name)
	defer done()

	unlock := ct.host.lock(name)
	defer unlock()

	t, err := ct.trees(ctx, name, snapshots)
	if err != nil {
		return err
	}

	return fn(ctx, t)
}

// trees gives access to instance name's trees. Preconditions: the instance lock is held.
func (ct *Creator) trees(ctx context.Context, name string, snapshots bool) (*Trees, error) {
	inst, profiles, err := ct.host.load(ctx, name)
	if err != nil {
		return nil, err
	}

	ids, err := ct.host.idsOf(inst)
	if err != nil {
		return nil, err
	}

	var snaps []db.Snapshot
	if snapshots {
		err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			var err error
			snaps, err = tx.GetInstanceSnapshots(ctx, name)
			return err
		})
		if err != nil {
			return nil, err
		}
	}

	_, devices := Expand(inst, profiles)
	pool, err := ct.pools.of(devices)
	if err != nil {
		return nil, err
	}

	t := &Trees{Instance: ct.view.render(inst, profiles, false).Instance, Snapshots: []api.InstanceSnapshot{}, IDs: ids,
		MetaDir: ct.host.instanceDir(name), Pool: ct.pools.nameOf(devices), Backend: pool.Name(), ct: ct, name: name, pool: pool}
	for i := range snaps {
		t.Snapshots = append(t.Snapshots, ct.snaps.Render(&snaps[i], profiles))
	}

	return t, nil
}

// Root gives the instance's root filesystem to read until release. A running instance is
// read from a temporary snapshot taken while it is frozen, so what is read is consistent
// as of one instant and the container only pauses for the copy of its own data.
func (t *Trees) Root(ctx context.Context) (string, func(), error) {
	ct, name, pool := t.ct, t.name, t.pool
	if ct.host.monitor(name) == nil {
		rootfs, err := pool.MountInstance(name, t.IDs)
		if err != nil {
			return "", nil, err
		}

		return rootfs, func() { _ = pool.UnmountInstance(name) }, nil
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := storage.TempSnapshotPrefix + hex.EncodeToString(b)
	err := ct.host.frozen(name, func() error { return pool.CreateSnapshot(ctx, name, tmp) })
	if err != nil {
		return "", nil, err
	}

	rootfs, release, err := pool.MountSnapshot(name, tmp, t.IDs)
	if err != nil {
		_ = pool.DeleteSnapshot(name, tmp)
		return "", nil, err
	}

	return rootfs, func() {
		release()
		_ = pool.DeleteSnapshot(name, tmp)
	}, nil
}

// Snapshot gives snapshot snap's root filesystem to read until release.
func (t *Trees) Snapshot(snap string) (string, func(), error) {
	return t.pool.MountSnapshot(t.name, snap, t.IDs)
}
