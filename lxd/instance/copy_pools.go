package instance

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/revert"
)

// copyAcross is Copy to another pool than the source's (lxc copy --storage). A driver
// copies only within its pool, so each tree (the source's root or its snapshot
// cr.SourceSnap, then each snapshot) is copied, owners moved back to the container's view,
// into a temporary image of the destination pool, which the new instance and its
// snapshots are then made on, as an import makes them (CreateFromTrees). The source is
// read as an export reads it (Trees): a running one from a temporary snapshot taken while
// it is frozen. The caller holds the source's lock.
func (ct *Creator) copyAcross(ctx context.Context, cr *CopyRequest, row *db.Instance, snaps []db.Snapshot, srcPool, pool storage.Driver, from idmap.Set) error {
	src, name := cr.Source, cr.Post.Name
	t := &Trees{IDs: from, ct: ct, name: src, pool: srcPool}
	fps := map[string]string{}
	start := time.Now()
	err := ct.newInstance(ctx, &newSpec{
		row:              *row,
		devices:          cr.devices,
		pool:             pool,
		applyTemplate:    "copy",
		snapshots:        snaps,
		snapshotIdentity: true,
		event:            map[string]any{"source": src},
		makeDir: func(dir string) error {
			err := copyMetadata(ct.host.instanceDir(src), dir)
			if err != nil {
				return fmt.Errorf("copying metadata of %q: %w", src, err)
			}

			return nil
		},
		makeRoot: func(ctx context.Context, to idmap.Set, r *revert.Reverter) error {
			r.Add(pool.PruneBackupImages)

			read := func() (string, func(), error) { return t.Root(ctx) }
			if cr.SourceSnap != "" {
				read = func() (string, func(), error) { return t.Snapshot(cr.SourceSnap) }
			}

			var err error
			fps[""], err = copyToImage(ctx, pool, from, read)
			if err != nil {
				return fmt.Errorf("copying storage of %q: %w", src, err)
			}

			for _, s := range snaps {
				fps[s.Name], err = copyToImage(ctx, pool, from, func() (string, func(), error) { return t.Snapshot(s.Name) })
				if err != nil {
					return fmt.Errorf("copying snapshot %q of %q: %w", s.Name, src, err)
				}
			}

			return pool.CreateInstanceFromImage(name, fps[""], to)
		},
		makeSnapshots: func(ctx context.Context, to idmap.Set) error {
			for _, s := range snaps {
				err := pool.CreateSnapshotFromImage(name, s.Name, fps[s.Name], to)
				if err != nil {
					return err
				}
			}

			return nil
		},
	})
	if err != nil {
		return err
	}

	// Instances on dir pools hold copies: their images can go now.
	pool.PruneBackupImages()
	ct.log.Info("copied instance to another pool", "source", src, "snapshot", cr.SourceSnap, "instance", name, "snapshots", len(snaps), "duration", time.Since(start))

	return nil
}

// copyToImage copies the tree read gives (owned by the host ids of from) into a new
// temporary image of pool, owned as the container sees it, and returns the image's name.
func copyToImage(ctx context.Context, pool storage.Driver, from idmap.Set, read func() (string, func(), error)) (string, error) {
	root, release, err := read()
	if err != nil {
		return "", err
	}

	defer release()

	fp := tempImageName()
	err = pool.CreateImage(fp, func(rootfsDir string) error {
		// The copy makes its destination itself, with the source root's mode and owner.
		err := os.Remove(rootfsDir)
		if err != nil {
			return err
		}

		return idmap.CopyRemapped(ctx, root, rootfsDir, from, idmap.Set{Size: from.Size})
	})
	if err != nil {
		return "", err
	}

	return fp, nil
}

// rootOnPool returns a snapshot's devices with its root disk on pool: a root disk of its
// own gets the pool key, else the copy's root disk (from its expanded devices) is added,
// so that restoring the snapshot keeps the instance on the pool its storage is on.
func rootOnPool(devices, expanded map[string]map[string]string, pool string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(devices)+1)
	found := false
	for k, d := range devices {
		d = copyMap(d)
		if d["type"] == "disk" && device.IsRoot(d) {
			d["pool"] = pool
			found = true
		}

		out[k] = d
	}

	if found {
		return out
	}

	for k, d := range expanded {
		if d["type"] == "disk" && device.IsRoot(d) {
			out[k] = copyMap(d)
			out[k]["pool"] = pool
		}
	}

	return out
}
