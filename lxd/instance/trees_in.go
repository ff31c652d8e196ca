package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
)

// Incoming is an instance whose files arrive as trees: from a backup, or (later) from
// another server. Its name, config and devices come from outside: CreateFromTrees checks
// them as a create request's are, and the caller refuses more with its own policy (a
// backup may not bring devices that reach the host).
type Incoming struct {
	// Instance is the row to make: Name, Architecture, Description, Ephemeral, Config,
	// Devices and Profiles. Profiles this server lacks are dropped (default if none is
	// left). Identity keys are set by CreateFromTrees.
	Instance db.Instance
	// Snapshots are made with it, in this order, each from its own tree; one without
	// profiles gets the instance's.
	Snapshots []db.Snapshot
	Identity  Identity
	// Source says where the instance comes from ("backup"): the instance-created event's
	// source, and a tree Fill fails to write is a 400 "unpacking <Source>: ...".
	Source string
	// Fill writes one tree into empty directories: for snap "" the instance's root
	// filesystem into rootfsDir and its image metadata (metadata.yaml, templates/) into
	// metaDir; for a snapshot its root filesystem (metaDir is scratch then). Owners are
	// written as the container sees them (0 is its root): the pool maps them into the
	// instance's id range. Fill writes as host root into a directory nothing else can
	// reach yet, so it must confine what it writes to rootfsDir and metaDir itself (the
	// image unpacker does).
	Fill func(ctx context.Context, snap, rootfsDir, metaDir string) error
	// FillAs, when set, is called instead of Fill with the new instance's id range, for a
	// filler that writes as the container (a migration's rsync receiver) rather than as
	// host root.
	FillAs func(ctx context.Context, ids idmap.Set, snap, rootfsDir, metaDir string) error
	// Move, when set, makes this the arrival of an instance that another cluster member
	// hands over (move_member.go): its row exists and changes, rather than a new one.
	Move *MemberMove
}

// CreateFromTrees makes an instance whose trees Fill writes, each first as a pool image
// (with no DB row, see storage.BackupImagePrefix) that the instance and its snapshots are
// then made from, in a fresh id range. It is the creation pipeline's entry point for
// whatever brings an instance as files: backup import, and a migration sink.
func (ct *Creator) CreateFromTrees(ctx context.Context, in Incoming) error {
	err := project.ValidateKey(in.Instance.Name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	err = ValidateDevices(in.Instance.Devices)
	if err == nil {
		err = ValidateConfig(in.Instance.Config)
	}

	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%s: %v", in.Source, err)
	}

	for _, s := range in.Snapshots {
		err := snapshot.ValidateName(s.Name)
		if err != nil {
			return err
		}
	}

	devices, err := ct.foreignDevices(ctx, &in.Instance)
	if err != nil {
		return err
	}

	err = ct.sizes.checkRootSize("", nil, devices)
	if err != nil {
		return err
	}

	pool, err := ct.pools.of(devices)
	if err != nil {
		return err
	}

	name := in.Instance.Name
	fps := map[string]string{}
	spec := &newSpec{
		row:             in.Instance,
		devices:         devices,
		pool:            pool,
		identity:        in.Identity,
		snapshots:       in.Snapshots,
		foreignProfiles: true,
		event:           map[string]any{"source": in.Source},
		makeDir:         func(dir string) error { return os.MkdirAll(dir, 0o755) },
		makeRoot: func(ctx context.Context, ids idmap.Set, r *revert.Reverter) error {
			r.Add(pool.PruneBackupImages)

			// Snapshots first, oldest first, then the instance: the order a migration
			// stream brings them in.
			trees := []string{}
			for _, s := range in.Snapshots {
				trees = append(trees, s.Name)
			}

			trees = append(trees, "")
			for _, tree := range trees {
				fp, err := ct.fillImage(ctx, pool, in, ids, tree)
				if err != nil {
					return err
				}

				fps[tree] = fp
			}

			return pool.CreateInstanceFromImage(name, fps[""], ids)
		},
		makeSnapshots: func(ctx context.Context, ids idmap.Set) error {
			for _, s := range in.Snapshots {
				err := pool.CreateSnapshotFromImage(name, s.Name, fps[s.Name], ids)
				if err != nil {
					return err
				}
			}

			return nil
		},
	}
	if in.Move != nil {
		ct.prepareMoveIn(spec, *in.Move)
	}

	err = ct.newInstance(ctx, spec)
	if err != nil {
		return err
	}

	if in.Move != nil {
		unmarkMemberMove(ct.host.instanceDir(name)) // the row is this member's now
	}

	// Dir instances hold copies: their images can go now.
	pool.PruneBackupImages()
	return nil
}

// fillImage has in.Fill write tree into a new image in pool and returns its name.
func (ct *Creator) fillImage(ctx context.Context, pool storage.Driver, in Incoming, ids idmap.Set, tree string) (string, error) {
	metaDir := ct.host.instanceDir(in.Instance.Name)
	if tree != "" {
		scratch, err := os.MkdirTemp(ct.host.scratchDir(), "tree-meta-")
		if err != nil {
			return "", err
		}

		defer os.RemoveAll(scratch)
		metaDir = scratch
	}

	fp := tempImageName()
	err := pool.CreateImage(fp, func(rootfsDir string) error {
		if in.FillAs != nil {
			return in.FillAs(ctx, ids, tree, rootfsDir, metaDir)
		}

		return in.Fill(ctx, tree, rootfsDir, metaDir)
	})
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "unpacking %s: %v", in.Source, err)
	}

	return fp, nil
}

// tempImageName names a pool image that no image record keeps: the instance and
// snapshots made from it hold it (storage.BackupImagePrefix).
func tempImageName() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return storage.BackupImagePrefix + hex.EncodeToString(b)
}

// foreignDevices expands the devices of an instance from elsewhere with the profiles it
// will get (insertNew: those of its profiles that exist here, else default).
func (ct *Creator) foreignDevices(ctx context.Context, inst *db.Instance) (map[string]map[string]string, error) {
	var devices map[string]map[string]string
	err := ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		devices, err = expandNew(ctx, tx, existingProfiles(ctx, tx, inst.Name, inst.Profiles), inst.Devices)
		return err
	})

	return devices, err
}
