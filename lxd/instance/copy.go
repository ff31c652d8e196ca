package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
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
func (m *Manager) PrepareCopy(ctx context.Context, req api.InstancesPost) (*CopyRequest, error) {
	if req.Name == "" {
		req.Name = generateName()
	}

	err := validate.InstanceName(req.Name)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	if req.Source.Server != "" {
		return nil, api.StatusErrorf(http.StatusNotImplemented, "copies between servers are not supported")
	}

	src, snap, _ := strings.Cut(req.Source.Source, "/")
	if src == "" {
		return nil, api.StatusErrorf(http.StatusBadRequest, "copy source is missing")
	}

	withPostDefaults(&req)

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
	err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		exists, err := tx.InstanceExists(ctx, req.Name)
		if err != nil {
			return err
		}

		if exists {
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists", req.Name)
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

	err = m.checkRootSize("", nil, devices)
	if err != nil {
		return nil, err
	}

	return &CopyRequest{Post: req, Source: src, SourceSnap: snap, devices: devices}, nil
}

// Copy makes a new instance from another (or from one of its snapshots): its data copied
// into a fresh id range, a new volatile.uuid, no MAC addresses (regenerated at start), and
// volatile.apply_template=copy so the image's copy templates (hostname, hosts) render at
// first start. The snapshots come along unless instance_only or the source is a snapshot.
// A running source is frozen while its data is copied.
func (m *Manager) Copy(ctx context.Context, cr *CopyRequest) error {
	name, src := cr.Post.Name, cr.Source

	releaseName, err := m.reserveName(name)
	if err != nil {
		return err
	}

	defer releaseName()

	ctx, done := m.track(ctx, src)
	defer done()

	unlock := m.lock(src)
	defer unlock()

	err = ctx.Err()
	if err != nil {
		return err
	}

	srcInst, _, err := m.load(ctx, src)
	if err != nil {
		return err
	}

	from, err := m.idsOf(srcInst)
	if err != nil {
		return err
	}

	var snaps []db.Snapshot
	err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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

	base, release, err := m.allocateIDs(ctx)
	if err != nil {
		return err
	}

	defer release()
	to := idmap.Set{HostUID: base, HostGID: m.cfg.IDs.GIDStart + (base - m.cfg.IDs.UIDStart), Size: idmap.DefaultSize}

	r := revert.New()
	defer r.Fail()

	err = copyMetadata(m.instanceDir(src), m.instanceDir(name))
	if err != nil {
		return fmt.Errorf("copying metadata of %q: %w", src, err)
	}

	r.Add(func() { _ = os.RemoveAll(m.instanceDir(name)) })

	start := time.Now()
	copyData := func() error { return m.cfg.Pool.CopyInstance(ctx, src, cr.SourceSnap, name, from, to) }
	if cr.SourceSnap == "" {
		err = m.frozen(src, copyData)
	} else {
		err = copyData() // a snapshot never changes
	}

	if err != nil {
		return fmt.Errorf("copying storage of %q: %w", src, err)
	}

	r.Add(func() { _ = m.cfg.Pool.DeleteInstance(name) })
	err = m.applyRootSize(name, cr.devices)
	if err != nil {
		return err
	}

	for _, s := range snaps {
		err := m.cfg.Pool.CopySnapshot(ctx, src, s.Name, name, s.Name, from, to)
		if err != nil {
			return fmt.Errorf("copying snapshot %q of %q: %w", s.Name, src, err)
		}
	}

	m.log.Info("copied instance", "source", src, "snapshot", cr.SourceSnap, "instance", name, "snapshots", len(snaps), "duration", time.Since(start))

	row := db.Instance{
		Name:         name,
		Type:         api.InstanceTypeContainer,
		Architecture: srcInst.Architecture,
		Description:  cr.Post.Description,
		Ephemeral:    cr.Post.Ephemeral,
		CreatedAt:    time.Now().UTC(),
		Config:       copyMap(cr.Post.Config),
		Devices:      cr.Post.Devices,
		Profiles:     cr.Post.Profiles,
	}

	if row.Architecture == "" {
		row.Architecture = cr.Post.Architecture
	}

	idJSON := idmapJSON(to)
	identity := map[string]string{
		"volatile.uuid":             uuid.NewString(),
		"volatile.idmap.base":       strconv.FormatInt(base, 10),
		"volatile.idmap.next":       idJSON,
		"volatile.last_state.idmap": idJSON,
		"volatile.apply_template":   "copy",
		"volatile.last_state.power": "STOPPED",
	}

	if fp := srcInst.Config["volatile.base_image"]; fp != "" {
		identity["volatile.base_image"] = fp
	}

	for k, v := range identity {
		row.Config[k] = v
	}

	err = ctx.Err()
	if err != nil {
		return err
	}

	err = m.cfg.DB.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, row)
		if err != nil {
			return err
		}

		for _, s := range snaps {
			s.Instance = name
			s.Config = copyMap(s.Config)
			for k := range s.Config {
				if strings.HasSuffix(k, ".hwaddr") && strings.HasPrefix(k, "volatile.") {
					delete(s.Config, k)
				}
			}

			for k, v := range identity {
				if k != "volatile.apply_template" && k != "volatile.last_state.power" {
					s.Config[k] = v
				}
			}

			_, err := tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	r.Success()
	m.event("instance-created", name, map[string]any{"source": src})
	return nil
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
