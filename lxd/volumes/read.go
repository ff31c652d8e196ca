package volumes

import (
	"context"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

func isNotFound(err error) bool { return api.StatusErrorCheck(err, http.StatusNotFound) }

// key names a volume across pools.
type key struct{ pool, name string }

// users maps each volume to the instances (names) whose expanded devices attach it and
// the profiles (names) whose devices do.
type users struct {
	instances map[key][]string
	profiles  map[key][]string
}

// attached reads who uses which volume: a disk device (not the root disk) with a pool
// and a source names a custom volume.
func attached(ctx context.Context, tx *db.Tx) (*users, error) {
	u := &users{instances: map[key][]string{}, profiles: map[key][]string{}}

	owners, err := ownersOf(ctx, tx)
	if err != nil {
		return nil, err
	}

	profiles, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	byName := map[string]*db.Profile{}
	for i := range profiles {
		p := &profiles[i]
		byName[p.Name] = p
		proj, _ := project.SplitProfile(p.Name)
		for _, k := range volumeDisks(p.Devices, owners, proj) {
			u.profiles[k] = append(u.profiles[k], p.Name)
		}
	}

	insts, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	for i := range insts {
		_, devices := instance.Expand(&insts[i], byName)
		seen := map[key]bool{}
		for _, k := range volumeDisks(devices, owners, project.Of(insts[i].Name)) {
			if !seen[k] {
				seen[k] = true
				u.instances[k] = append(u.instances[k], insts[i].Name)
			}
		}
	}

	return u, nil
}

// volumeDisks lists the volumes a device map's disks attach, in project proj.
func volumeDisks(devices map[string]map[string]string, owners map[string]string, proj string) []key {
	var out []key
	for _, d := range devices {
		if d["type"] == "disk" && d["pool"] != "" && d["source"] != "" && d["path"] != "/" {
			k, ok := diskKey(owners, proj, d["pool"], d["source"])
			if ok {
				out = append(out, k)
			}
		}
	}

	return out
}

func (u *users) urls(k key) []string {
	out := []string{}
	for _, n := range u.instances[k] {
		out = append(out, projects.InstanceURL(n)) // the key names the project
	}

	for _, n := range u.profiles[k] {
		out = append(out, project.ProfileURL(n))
	}

	sort.Strings(out)
	return out
}

func toAPI(v *db.StorageVolume, u *users) *api.StorageVolume {
	return &api.StorageVolume{
		StorageVolumePut: api.StorageVolumePut{Config: v.Config, Description: v.Description},
		Name:             project.VolumeName(v.Name),
		Type:             "custom",
		UsedBy:           u.urls(key{v.Pool, v.Name}),
		Location:         "none",
		ContentType:      v.ContentType,
		Project:          project.VolumeProject(v.Name),
		CreatedAt:        v.CreatedAt,
	}
}

// List returns the custom volumes of a pool with their users.
func (s *Service) List(ctx context.Context, pool string) ([]api.StorageVolume, error) {
	out := []api.StorageVolume{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStoragePool(ctx, pool)
		if err != nil {
			return err
		}

		vols, err := tx.GetStorageVolumes(ctx, &pool)
		if err != nil {
			return err
		}

		u, err := attached(ctx, tx)
		if err != nil {
			return err
		}

		for i := range vols {
			out = append(out, *toAPI(&vols[i], u))
		}

		return nil
	})

	return out, err
}

// Get reads one custom volume with its users, or a 404.
func (s *Service) Get(ctx context.Context, pool, name string) (*api.StorageVolume, error) {
	var out *api.StorageVolume
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		v, err := tx.GetStorageVolume(ctx, pool, name)
		if err != nil {
			return err
		}

		u, err := attached(ctx, tx)
		if err != nil {
			return err
		}

		out = toAPI(v, u)
		return nil
	})

	return out, err
}
