package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
	"github.com/berth-dev/berth/shared/validate"
)

// CopyRequest is a validated POST /1.0/instances with source type "copy".
type CopyRequest struct {
	Post       api.InstancesPost
	Source     string // instance name
	SourceSnap string // snapshot name, or "" for the instance itself

	devices map[string]map[string]string // expanded with the profiles at validation
}

// PrepareCopy validates a copy request: the source (SRC or SRC/SNAP) exists, the new name
// is free. Every error is a StatusError and nothing has changed when it returns one.
func (ct *Creator) PrepareCopy(ctx context.Context, req api.InstancesPost) (*CopyRequest, error) {
	err := NameRequest(&req)
	if err != nil {
		return nil, err
	}

	if req.Source.Server != "" {
		return nil, api.StatusErrorf(http.StatusNotImplemented, "copies between servers are not supported")
	}

	src, snap, _ := strings.Cut(req.Source.Source, "/")
	if src == "" {
		return nil, api.StatusErrorf(http.StatusBadRequest, "copy source is missing")
	}

	// Both are names in the request's project: a name is never a key (no '_'), so no
	// request reaches another project's instance through a key.
	err = validate.InstanceName(src)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid copy source: %v", err)
	}

	// The source may be in another project (lxc copy --target-project: the request's
	// project is the target, source.project the source's); the caller checked that it
	// may use that project.
	proj := project.FromContext(ctx)
	srcProj := proj
	if req.Source.Project != "" {
		srcProj = req.Source.Project
		err = project.ValidateName(srcProj)
		if err != nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "invalid copy source project: %v", err)
		}
	}

	src = project.Key(srcProj, src)
	req.Name, err = project.KeyFor(proj, req.Name)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	withPostDefaults(&req)

	req.Profiles, err = withProfileKeys(ctx, ct.db, req.Name, req.Profiles)
	if err != nil {
		return nil, err
	}

	// The client sends the source's config without volatile keys but a server must not
	// trust that: identity keys are regenerated, MACs dropped so they are made anew.
	for k := range req.Config {
		if strings.HasPrefix(k, "volatile.") {
			delete(req.Config, k)
		}
	}

	err = ValidateConfig(req.Config)
	if err != nil {
		return nil, err
	}

	err = ValidateDevices(req.Devices)
	if err != nil {
		return nil, err
	}

	var devices map[string]map[string]string
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		exists, err := tx.InstanceExists(ctx, req.Name)
		if err != nil {
			return err
		}

		if exists {
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists", req.Name)
		}

		if srcProj != proj {
			_, err = tx.GetProject(ctx, srcProj)
			if err != nil {
				return err
			}
		}

		_, err = tx.GetInstance(ctx, src)
		if err != nil {
			return err
		}

		if snap != "" {
			_, err = tx.GetInstanceSnapshot(ctx, src, snap)
			if err != nil {
				return err
			}
		}

		devices, err = expandNew(ctx, tx, req.Profiles, req.Devices)
		return err
	})
	if err != nil {
		return nil, err
	}

	err = ct.sizes.checkRootSize("", nil, devices)
	if err != nil {
		return nil, err
	}

	return &CopyRequest{Post: req, Source: src, SourceSnap: snap, devices: devices}, nil
}

// Copy makes a new instance from another (or from one of its snapshots): its data copied
// into a fresh id range, a new volatile.uuid, new MAC addresses (made with its row), and
// volatile.apply_template=copy so the image's copy templates (hostname, hosts) render at
// first start. The snapshots come along unless instance_only or the source is a snapshot.
// A running source is frozen while its data is copied.
func (ct *Creator) Copy(ctx context.Context, cr *CopyRequest) error {
	name, src := cr.Post.Name, cr.Source

	ctx, done := ct.host.track(ctx, src)
	defer done()

	unlock := ct.host.lock(src)
	defer unlock()

	err := ctx.Err()
	if err != nil {
		return err
	}

	srcInst, srcProfiles, err := ct.host.load(ctx, src)
	if err != nil {
		return err
	}

	_, srcDevices := Expand(srcInst, srcProfiles)
	srcPool, err := ct.pools.of(srcDevices)
	if err != nil {
		return err
	}

	pool, err := ct.pools.of(cr.devices)
	if err != nil {
		return err
	}

	across := ct.pools.nameOf(srcDevices) != ct.pools.nameOf(cr.devices)

	from, err := ct.host.idsOf(srcInst)
	if err != nil {
		return err
	}

	var snaps []db.Snapshot
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetInstanceSnapshots(ctx, src)
		return err
	})
	if err != nil {
		return err
	}

	if cr.SourceSnap != "" || cr.Post.Source.InstanceOnly || cr.Post.Source.ContainerOnly {
		snaps = nil
	}

	// Between projects, a snapshot's profiles (restored with it) become the target
	// project's of the same names; those it lacks are dropped.
	if project.Of(src) != project.Of(name) && len(snaps) > 0 {
		err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			for i := range snaps {
				snaps[i].Profiles = existingProfiles(ctx, tx, name, project.ProfileNames(snaps[i].Profiles))
			}

			return nil
		})
		if err != nil {
			return err
		}
	}

	// The snapshots' settings must keep the copy on its pool when one is restored.
	if across {
		for i := range snaps {
			snaps[i].Devices = rootOnPool(snaps[i].Devices, cr.devices, ct.pools.nameOf(cr.devices))
		}
	}

	// A snapshot's MAC addresses go too; its identity keys become the copy's.
	for i := range snaps {
		snaps[i].Config = copyMap(snaps[i].Config)
		for k := range snaps[i].Config {
			if strings.HasSuffix(k, ".hwaddr") && strings.HasPrefix(k, "volatile.") {
				delete(snaps[i].Config, k)
			}
		}
	}

	row := db.Instance{
		Name:         name,
		Architecture: srcInst.Architecture,
		Description:  cr.Post.Description,
		Ephemeral:    cr.Post.Ephemeral,
		Config:       copyMap(cr.Post.Config),
		Devices:      cr.Post.Devices,
		Profiles:     cr.Post.Profiles,
	}

	if row.Architecture == "" {
		row.Architecture = cr.Post.Architecture
	}

	if fp := srcInst.Config["volatile.base_image"]; fp != "" {
		row.Config["volatile.base_image"] = fp
	}

	if across {
		return ct.copyAcross(ctx, cr, &row, snaps, srcPool, pool, from)
	}

	var start time.Time
	return ct.newInstance(ctx, &newSpec{
		row:              row,
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
		makeRoot: func(ctx context.Context, to idmap.Set, _ *revert.Reverter) error {
			start = time.Now()
			copyData := func() error { return pool.CopyInstance(ctx, src, cr.SourceSnap, name, from, to) }

			var err error
			if cr.SourceSnap == "" {
				err = ct.host.frozen(src, copyData)
			} else {
				err = copyData() // a snapshot never changes
			}

			if err != nil {
				return fmt.Errorf("copying storage of %q: %w", src, err)
			}

			return nil
		},
		makeSnapshots: func(ctx context.Context, to idmap.Set) error {
			for _, s := range snaps {
				err := pool.CopySnapshot(ctx, src, s.Name, name, s.Name, from, to)
				if err != nil {
					return fmt.Errorf("copying snapshot %q of %q: %w", s.Name, src, err)
				}
			}

			ct.log.Info("copied instance", "source", src, "snapshot", cr.SourceSnap, "instance", name, "snapshots", len(snaps), "duration", time.Since(start))
			return nil
		},
	})
}

// copyMetadata copies an instance's image metadata (metadata.yaml, templates/) to a new
// instance directory; the runtime directory stays behind.
func copyMetadata(srcDir, dstDir string) error {
	err := os.MkdirAll(dstDir, 0o755)
	if err != nil {
		return err
	}

	for _, sub := range []string{"metadata.yaml", "templates"} {
		src := filepath.Join(srcDir, sub)
		_, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue
		}

		err = copyTree(src, filepath.Join(dstDir, sub))
		if err != nil {
			return err
		}
	}

	return nil
}
