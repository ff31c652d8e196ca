package pools

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// ETag is LXD's: the fields a PUT can change.
func ETag(p *api.StoragePool) any {
	return []any{p.Name, p.Driver, p.Description, p.Config}
}

func (s *Service) toAPI(row *db.StoragePool, users []string) *api.StoragePool {
	s.lmu.RLock()
	_, ok := s.loaded[row.Name]
	s.lmu.RUnlock()

	status := "Created"
	if !ok {
		status = "Unavailable"
	}

	if users == nil {
		users = []string{}
	}

	sort.Strings(users)
	return &api.StoragePool{
		StoragePoolPut: api.StoragePoolPut{Config: row.Config, Description: row.Description},
		Name:           row.Name,
		Driver:         row.Driver,
		Status:         status,
		UsedBy:         users,
		Locations:      []string{"none"},
	}
}

// users maps each pool to the URLs of what uses it: the instances and profiles whose
// (expanded) disk devices name it (an instance lives on its root disk's pool, the default
// pool when its root disk names none), its custom volumes, and, for the default pool
// (where images are stored), every image.
func users(ctx context.Context, tx *db.Tx) (map[string][]string, error) {
	out := map[string][]string{}
	seen := map[string]map[string]bool{}
	add := func(pool, u string) {
		if seen[pool] == nil {
			seen[pool] = map[string]bool{}
		}

		if !seen[pool][u] {
			seen[pool][u] = true
			out[pool] = append(out[pool], u)
		}
	}

	profiles, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	byName := map[string]*db.Profile{}
	for i := range profiles {
		p := &profiles[i]
		byName[p.Name] = p
		for _, pool := range diskPools(p.Devices) {
			add(pool, project.ProfileURL(p.Name))
		}
	}

	insts, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	for i := range insts {
		u := projects.InstanceURL(insts[i].Name)
		_, devices := instance.Expand(&insts[i], byName)
		add(instance.RootPool(devices, DefaultName), u)
		for _, pool := range diskPools(devices) {
			add(pool, u)
		}
	}

	vols, err := tx.GetStorageVolumes(ctx, nil)
	if err != nil {
		return nil, err
	}

	for _, v := range vols {
		add(v.Pool, project.VolumeURL(v.Pool, v.Name)) // the key names its project
	}

	images, err := tx.GetImages(ctx)
	if err != nil {
		return nil, err
	}

	for _, img := range images {
		u := "/1.0/images/" + img.Fingerprint
		if img.Project != project.Default {
			u += "?project=" + url.QueryEscape(img.Project)
		}

		add(DefaultName, u)
	}

	return out, nil
}

// diskPools lists the pools a device map's disks name.
func diskPools(devices map[string]map[string]string) []string {
	var out []string
	for _, d := range devices {
		if d["type"] == "disk" && d["pool"] != "" {
			out = append(out, d["pool"])
		}
	}

	return out
}

// List returns every pool with its users.
func (s *Service) List(ctx context.Context) ([]api.StoragePool, error) {
	list := []api.StoragePool{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetStoragePools(ctx)
		if err != nil {
			return err
		}

		used, err := users(ctx, tx)
		if err != nil {
			return err
		}

		for i := range rows {
			list = append(list, *s.toAPI(&rows[i], used[rows[i].Name]))
		}

		return nil
	})

	return list, err
}

// Get reads one pool with its users, or a 404.
func (s *Service) Get(ctx context.Context, name string) (*api.StoragePool, error) {
	var out *api.StoragePool
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetStoragePool(ctx, name)
		if err != nil {
			return err
		}

		used, err := users(ctx, tx)
		if err != nil {
			return err
		}

		out = s.toAPI(row, used[name])
		return nil
	})

	return out, err
}

// Resources reports the space and inodes of the filesystem a pool's data is on.
func (s *Service) Resources(ctx context.Context, name string) (*api.ResourcesStoragePool, error) {
	var row *db.StoragePool
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = tx.GetStoragePool(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	s.lmu.RLock()
	_, ok := s.loaded[name]
	s.lmu.RUnlock()
	if !ok {
		return nil, api.StatusErrorf(http.StatusServiceUnavailable, "storage pool %q is unavailable", name)
	}

	var st unix.Statfs_t
	err = unix.Statfs(s.dirOf(row), &st)
	if err != nil {
		return nil, fmt.Errorf("reading space of pool %q: %w", name, err)
	}

	bsize := uint64(st.Bsize)
	return &api.ResourcesStoragePool{
		Space:  api.ResourcesStoragePoolSpace{Total: st.Blocks * bsize, Used: (st.Blocks - st.Bfree) * bsize},
		Inodes: api.ResourcesStoragePoolInodes{Total: st.Files, Used: st.Files - st.Ffree},
	}, nil
}
