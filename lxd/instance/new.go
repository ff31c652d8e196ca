package instance

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
)

// Identity says whether a new instance is a new one or one that moves here.
type Identity int

const (
	// NewIdentity gives the instance a new volatile.uuid: a create, copy or import.
	NewIdentity Identity = iota
	// KeepIdentity keeps the volatile.uuid its config brings (a new one if it has none):
	// the same instance arriving from another server.
	KeepIdentity
)

// newSpec is one instance to make. Every way an instance comes to exist (Create, Copy,
// CreateFromTrees for imports and migrations) goes through newInstance with one.
type newSpec struct {
	// row is the instance's DB row without identity: newInstance sets its type, creation
	// time, volatile.uuid, volatile.idmap.*, volatile.last_state.* and apply_template.
	// volatile.base_image is the caller's (the image, or the source's).
	row     db.Instance
	devices map[string]map[string]string // row's devices expanded with its profiles: the root disk size
	pool    storage.Driver               // the pool the instance lives on (its root disk's)

	identity      Identity
	applyTemplate string // volatile.apply_template: which image templates render at first start ("" none)

	// snapshots are inserted with the row (their storage made by makeSnapshots);
	// snapshotIdentity writes the instance's identity keys into each one's config too.
	snapshots        []db.Snapshot
	snapshotIdentity bool

	// foreignProfiles: the instance comes from elsewhere and may name profiles this
	// server lacks. Only those that exist are kept (default if none), and a snapshot
	// without profiles gets the instance's.
	foreignProfiles bool

	image string // the image the instance is made from: its last use is updated ("" none)
	// imageProject is the project whose image set holds image.
	imageProject string

	// makeDir fills the instance directory (image metadata and templates); makeRoot makes
	// the pool's instance (r may take undo steps of its own); makeSnapshots makes the
	// snapshots' storage once the root disk size is set. makeSnapshots may be nil.
	makeDir       func(dir string) error
	makeRoot      func(ctx context.Context, ids idmap.Set, r *revert.Reverter) error
	makeSnapshots func(ctx context.Context, ids idmap.Set) error

	event map[string]any // context of the instance-created event

	// commit, when set, replaces writing a new row: a move between cluster members
	// (MemberMove) changes the existing row instead, which must exist.
	commit func(ctx context.Context, tx *db.Tx, ids idmap.Set) error
}

// newInstance is the creation pipeline: reserve the name (409 while another create holds
// it, or once a row has it), allocate an id range, make the instance's files and storage,
// then write its row with its identity keys and its snapshots in one transaction. The row
// is written last, so a crash part-way leaves only files without a row, which Reconcile
// removes; a failure removes what was made.
func (ct *Creator) newInstance(ctx context.Context, spec *newSpec) error {
	name := spec.row.Name
	spec.row.MemberID = ct.member // made here, so it lives here

	releaseName, err := ct.host.reserveName(name)
	if err != nil {
		return err
	}

	defer releaseName()

	if spec.commit == nil {
		exists, err := ct.host.exists(ctx, name)
		if exists {
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists", name)
		}

		if err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
			return err
		}
	}

	base, release, err := ct.allocateIDs(ctx)
	if err != nil {
		return err
	}

	defer release()
	ids := ct.ids.at(base)

	r := revert.New()
	defer r.Fail()

	err = spec.makeDir(ct.host.instanceDir(name))
	if err != nil {
		return err
	}

	r.Add(func() { _ = os.RemoveAll(ct.host.instanceDir(name)) })

	err = spec.makeRoot(ctx, ids, r)
	if err != nil {
		return err
	}

	r.Add(func() { _ = spec.pool.DeleteInstance(name) })

	err = ct.sizes.applyRootSize(name, spec.devices)
	if err != nil {
		return err
	}

	if spec.makeSnapshots != nil {
		err = spec.makeSnapshots(ctx, ids)
		if err != nil {
			return err
		}
	}

	err = ctx.Err()
	if err != nil {
		return err
	}

	// The storage is complete: the row is written even if the operation is cancelled now.
	err = ct.db.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error {
		if spec.commit != nil {
			return spec.commit(ctx, tx, ids)
		}

		return insertNew(ctx, tx, spec, ids)
	})
	if err != nil {
		return err
	}

	r.Success()
	ct.host.event("instance-created", name, spec.event)
	return nil
}

// insertNew writes the row of a new instance with its identity keys, and its snapshots.
func insertNew(ctx context.Context, tx *db.Tx, spec *newSpec, ids idmap.Set) error {
	row := spec.row
	row.Type = api.InstanceTypeContainer
	row.CreatedAt = time.Now().UTC()
	row.Config = copyMap(row.Config)
	row.Devices = api.NonNil(row.Devices)

	if spec.foreignProfiles {
		row.Profiles = existingProfiles(ctx, tx, row.Name, row.Profiles)
	}

	id := identityKeys(row.Config, spec.identity, ids)
	for k, v := range id {
		row.Config[k] = v
	}

	for k, v := range device.NewNICAddresses(row.Config, spec.devices) {
		row.Config[k] = v
	}

	row.Config["volatile.last_state.power"] = "STOPPED"
	if spec.applyTemplate != "" {
		row.Config["volatile.apply_template"] = spec.applyTemplate
	}

	// Checked in the transaction that writes the row, so two creates cannot both
	// take the last instance a project's limits allow.
	err := checkProject(ctx, tx, &row)
	if err != nil {
		return err
	}

	_, err = tx.CreateInstance(ctx, row)
	if err != nil {
		return err
	}

	if spec.image != "" {
		err := tx.UpdateImageLastUsed(ctx, spec.imageProject, spec.image, time.Now().UTC())
		if err != nil {
			return err
		}
	}

	for _, s := range spec.snapshots {
		s.Instance = row.Name
		// A snapshot's profiles become the instance's on a restore: from elsewhere (a
		// backup), they are names in the instance's project like the instance's own,
		// never keys of another project's profiles.
		if spec.foreignProfiles && s.Profiles == nil {
			s.Profiles = row.Profiles
		} else if spec.foreignProfiles {
			s.Profiles = existingProfiles(ctx, tx, row.Name, s.Profiles)
		}

		if spec.snapshotIdentity {
			s.Config = copyMap(s.Config)
			for k, v := range id {
				s.Config[k] = v
			}
		}

		_, err := tx.CreateInstanceSnapshot(ctx, s)
		if err != nil {
			return err
		}
	}

	return nil
}

// identityKeys are the keys that make an instance itself on this server: its uuid (kept
// from config when identity says so), its id range, and the base image config names.
func identityKeys(config map[string]string, identity Identity, ids idmap.Set) map[string]string {
	idJSON := idmapJSON(ids)
	out := map[string]string{
		"volatile.uuid":             uuid.NewString(),
		"volatile.idmap.base":       strconv.FormatInt(ids.HostUID, 10),
		"volatile.idmap.next":       idJSON,
		"volatile.last_state.idmap": idJSON,
	}

	if u := config["volatile.uuid"]; identity == KeepIdentity && u != "" {
		out["volatile.uuid"] = u
	}

	if fp := config["volatile.base_image"]; fp != "" {
		out["volatile.base_image"] = fp
	}

	return out
}

// existingProfiles keeps the names of profiles that exist here; default if none does.
// names come from elsewhere: they are mapped to keys of the instance's project here.
func existingProfiles(ctx context.Context, tx *db.Tx, inst string, names []string) []string {
	out := []string{}
	for _, p := range names {
		// ProfileName first: idempotent on keys already mapped (foreignDevices).
		keys, err := profileKeys(ctx, tx, inst, []string{project.ProfileName(p)})
		if err != nil {
			continue
		}

		p = keys[0]
		_, err = tx.GetProfile(ctx, p)
		if err == nil {
			out = append(out, p)
		}
	}

	if len(out) == 0 {
		keys, err := profileKeys(ctx, tx, inst, []string{"default"})
		if err != nil {
			return []string{"default"}
		}

		out = keys
	}

	return out
}
