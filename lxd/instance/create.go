package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
)

// CreateRequest is a validated instance creation: the daemon resolves the image before
// calling Create so that an unknown image fails the request synchronously with 404.
type CreateRequest struct {
	Post  api.InstancesPost
	Image *db.Image // nil for source "none"

	devices map[string]map[string]string // expanded with the profiles at validation
}

// PrepareCreate validates a POST /1.0/instances body and resolves its source. Every error is
// a StatusError and nothing has changed when it returns one.
func (ct *Creator) PrepareCreate(ctx context.Context, req api.InstancesPost) (*CreateRequest, error) {
	err := NameRequest(&req)
	if err != nil {
		return nil, err
	}

	name := req.Name
	req.Name, err = project.KeyFor(project.FromContext(ctx), req.Name)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	if req.Type != "" && req.Type != api.InstanceTypeContainer {
		return nil, api.StatusErrorf(http.StatusBadRequest, "instance type %q is not supported", req.Type)
	}

	withPostDefaults(&req)

	err = ValidateConfig(req.Config)
	if err == nil {
		err = ValidateRequestVolatile(req.Config)
	}

	if err != nil {
		return nil, err
	}

	err = ValidateDevices(req.Devices)
	if err != nil {
		return nil, err
	}

	cr := &CreateRequest{}
	names := req.Profiles
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		req.Profiles, err = profileKeys(ctx, tx, req.Name, names) // from names: a retry runs this again
		if err != nil {
			return err
		}

		exists, err := tx.InstanceExists(ctx, req.Name)
		if err != nil {
			return err
		}

		if exists {
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists", name)
		}

		cr.devices, err = expandNew(ctx, tx, req.Profiles, req.Devices)
		if err != nil {
			return err
		}

		// Early, so that a refusal fails the request itself; insertNew checks again.
		err = checkProject(ctx, tx, &db.Instance{Name: req.Name, Config: req.Config, Devices: req.Devices, Profiles: req.Profiles})
		if err != nil {
			return err
		}

		switch req.Source.Type {
		case "image":
			cr.Image, err = resolveImage(ctx, tx, req.Source)
			return err
		case "none":
			return api.StatusErrorf(http.StatusNotImplemented, "source type \"none\" is not supported yet")
		case "":
			return api.StatusErrorf(http.StatusBadRequest, "source type is missing")
		default:
			return api.StatusErrorf(http.StatusBadRequest, "source type %q is not supported", req.Source.Type)
		}
	})
	if err != nil {
		return nil, err
	}

	cr.Post = req
	err = ct.sizes.checkRootSize("", nil, cr.devices)
	if err == nil {
		// The custom volumes it attaches exist in its project and are free to attach.
		err = device.CheckVolumes(req.Name, cr.devices)
	}

	if err != nil {
		return nil, err
	}

	return cr, nil
}

// expandNew expands the devices of an instance that is not created yet with its
// profiles, which must exist.
func expandNew(ctx context.Context, tx *db.Tx, profileNames []string, devices map[string]map[string]string) (map[string]map[string]string, error) {
	profiles := map[string]*db.Profile{}
	for _, p := range profileNames {
		var err error
		profiles[p], err = tx.GetProfile(ctx, p)
		if err != nil {
			return nil, err
		}
	}

	_, expanded := Expand(&db.Instance{Profiles: profileNames, Devices: devices}, profiles)
	return expanded, nil
}

// resolveImage finds the image src names in the image set of the request's project
// (its own with features.images, the default project's otherwise).
func resolveImage(ctx context.Context, tx *db.Tx, src api.InstanceSource) (*db.Image, error) {
	ip, err := tx.ImagesProject(ctx, project.FromContext(ctx))
	if err != nil {
		return nil, err
	}

	if src.Fingerprint != "" {
		return tx.GetImage(ctx, ip, src.Fingerprint)
	}

	if src.Alias != "" {
		a, err := tx.GetImageAlias(ctx, ip, src.Alias)
		if err != nil {
			return nil, err
		}

		return tx.GetImage(ctx, ip, a.Fingerprint)
	}

	return nil, api.StatusErrorf(http.StatusBadRequest, "image source needs a fingerprint or an alias")
}

// Create makes the instance from its image: the image's metadata and templates copied
// with it (so templates still render if the image is deleted later), its storage on the
// image, and volatile.apply_template=create so the create templates render at first start.
func (ct *Creator) Create(ctx context.Context, cr *CreateRequest) error {
	name, img := cr.Post.Name, cr.Image
	row := db.Instance{
		Name:         name,
		Architecture: img.Architecture,
		Description:  cr.Post.Description,
		Ephemeral:    cr.Post.Ephemeral,
		Config:       copyMap(cr.Post.Config),
		Devices:      cr.Post.Devices,
		Profiles:     cr.Post.Profiles,
	}

	// The image's properties are the image author's, not the admin's: checked like config.
	for k, v := range img.Properties {
		err := validateKey("image."+k, v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "image property %q: %v", k, err)
		}

		row.Config["image."+k] = v
	}

	row.Config["volatile.base_image"] = img.Fingerprint

	pool, err := ct.pools.of(cr.devices)
	if err != nil {
		return err
	}

	return ct.newInstance(ctx, &newSpec{
		row:           row,
		devices:       cr.devices,
		pool:          pool,
		applyTemplate: "create",
		image:         img.Fingerprint,
		imageProject:  img.Project,
		makeDir: func(dir string) error {
			err := ct.images.EnsureInPool(ctx, img.Fingerprint, pool)
			if err != nil {
				return fmt.Errorf("preparing image %s: %w", img.Fingerprint[:12], err)
			}

			err = copyTree(ct.images.MetaDir(img.Fingerprint), dir)
			if err != nil {
				return fmt.Errorf("copying image metadata: %w", err)
			}

			return nil
		},
		makeRoot: func(ctx context.Context, ids idmap.Set, _ *revert.Reverter) error {
			err := pool.CreateInstanceFromImage(name, img.Fingerprint, ids)
			if err != nil {
				return fmt.Errorf("creating storage of %q: %w", name, err)
			}

			return nil
		},
	})
}

// allocateIDs picks the lowest free id range. The returned release drops the in-memory
// reservation once the DB row holds it.
func (ct *Creator) allocateIDs(ctx context.Context) (int64, func(), error) {
	var used map[string]string
	err := ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		used, err = tx.GetInstanceConfigValues(ctx, "volatile.idmap.base")
		return err
	})
	if err != nil {
		return 0, nil, err
	}

	ct.mu.Lock()
	defer ct.mu.Unlock()

	bases := []int64{}
	for _, v := range used {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			bases = append(bases, n)
		}
	}

	for b := range ct.idBusy {
		bases = append(bases, b)
	}

	base, err := idmap.Allocate(bases, ct.ids.UIDStart, ct.ids.UIDCount, idmap.DefaultSize)
	if err != nil {
		return 0, nil, api.StatusErrorf(http.StatusServiceUnavailable, "allocating ids: %v", err)
	}

	ct.idBusy[base] = true
	return base, func() {
		ct.mu.Lock()
		delete(ct.idBusy, base)
		ct.mu.Unlock()
	}, nil
}

type idmapEntry struct {
	Isuid    bool  `json:"Isuid"`
	Isgid    bool  `json:"Isgid"`
	Hostid   int64 `json:"Hostid"`
	Nsid     int64 `json:"Nsid"`
	Maprange int64 `json:"Maprange"`
}

// idmapJSON renders the map the way LXD stores volatile.idmap.* keys.
func idmapJSON(s idmap.Set) string {
	b, _ := json.Marshal([]idmapEntry{
		{Isuid: true, Hostid: s.HostUID, Maprange: s.Size},
		{Isgid: true, Hostid: s.HostGID, Maprange: s.Size},
	})
	return string(b)
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}

		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o755)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}

			return os.WriteFile(target, data, 0o644)
		}

		return nil
	})
}

// withPostDefaults fills what an InstancesPost may leave out, as LXD: empty config and
// devices, and the default profile.
func withPostDefaults(req *api.InstancesPost) {
	req.Config = api.NonNil(req.Config)
	req.Devices = api.NonNil(req.Devices)

	if req.Profiles == nil {
		req.Profiles = []string{"default"}
	}
}
