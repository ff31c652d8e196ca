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

	m    *Manager
	name string
}

// ReadTrees runs fn with read access to instance name's trees, holding the instance lock
// so that nothing else changes them (a running container's own writes aside: Root takes
// care of those). Deleting the instance cancels the context fn gets, rather than waiting
// for it.
func (m *Manager) ReadTrees(ctx context.Context, name string, snapshots bool, fn func(ctx context.Context, t *Trees) error) error {
	ctx, done := m.track(ctx, name)
	defer done()

	unlock := m.lock(name)
	defer unlock()

	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return err
	}

	var snaps []db.Snapshot
	if snapshots {
		err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			var err error
			snaps, err = tx.GetInstanceSnapshots(ctx, name)
			return err
		})
		if err != nil {
			return err
		}
	}

	t := &Trees{Instance: m.render(inst, profiles, false).Instance, Snapshots: []api.InstanceSnapshot{}, IDs: ids,
		MetaDir: m.instanceDir(name), m: m, name: name}
	for i := range snaps {
		t.Snapshots = append(t.Snapshots, renderSnapshot(&snaps[i], profiles))
	}

	return fn(ctx, t)
}

// Root gives the instance's root filesystem to read until release. A running instance is
// read from a temporary snapshot taken while it is frozen, so what is read is consistent
// as of one instant and the container only pauses for the copy of its own data.
func (t *Trees) Root(ctx context.Context) (string, func(), error) {
	m, name := t.m, t.name
	if m.monitor(name) == nil {
		rootfs, err := m.cfg.Pool.MountInstance(name, t.IDs)
		if err != nil {
			return "", nil, err
		}

		return rootfs, func() { _ = m.cfg.Pool.UnmountInstance(name) }, nil
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := storage.TempSnapshotPrefix + hex.EncodeToString(b)
	err := m.frozen(name, func() error { return m.cfg.Pool.CreateSnapshot(ctx, name, tmp) })
	if err != nil {
		return "", nil, err
	}

	rootfs, release, err := m.cfg.Pool.MountSnapshot(name, tmp, t.IDs)
	if err != nil {
		_ = m.cfg.Pool.DeleteSnapshot(name, tmp)
		return "", nil, err
	}

	return rootfs, func() {
		release()
		_ = m.cfg.Pool.DeleteSnapshot(name, tmp)
	}, nil
}

// Snapshot gives snapshot snap's root filesystem to read until release.
func (t *Trees) Snapshot(snap string) (string, func(), error) {
	return t.m.cfg.Pool.MountSnapshot(t.name, snap, t.IDs)
}
