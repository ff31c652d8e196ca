package db

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// Keys of a project's config that decide whose custom volumes it uses.
const (
	featureVolumes = "features.storage.volumes"
	restrictedKey  = "restricted"
)

// VolumeOwner is the project whose custom volumes project proj uses, from its config:
// its own with features.storage.volumes=true, else the default project's. A restricted
// project (restricted=true) without volumes of its own uses none: a 403, so that no path
// (the volumes API, a disk device, a copy) leads from a tenant's project to the default
// project's volumes, whatever an older config or an administrator's oversight left.
func VolumeOwner(proj string, cfg map[string]string) (string, error) {
	if proj == "" || proj == DefaultProjectName {
		return DefaultProjectName, nil
	}

	// The spellings the config accepts (validate.Bool: "True", "1", "yes", ...) mean what
	// they mean to the API's scope checks (validate.IsTrue): a restricted project written
	// "restricted=yes" must not read as unrestricted here.
	if validate.IsTrue(cfg[featureVolumes]) {
		return proj, nil
	}

	if validate.IsTrue(cfg[restrictedKey]) {
		return "", api.StatusErrorf(http.StatusForbidden,
			"project %q is restricted and has no storage volumes of its own (features.storage.volumes=false): it may not use the default project's", proj)
	}

	return DefaultProjectName, nil
}

// VolumeProject is VolumeOwner of the named project; 404 if it is missing.
func (tx *Tx) VolumeProject(ctx context.Context, proj string) (string, error) {
	if proj == "" || proj == DefaultProjectName {
		return DefaultProjectName, nil
	}

	p, err := tx.GetProject(ctx, proj)
	if err != nil {
		return "", err
	}

	return VolumeOwner(proj, p.Config)
}

// VolumeOwners maps every project to VolumeOwner of it, "" for a project that may use
// no volumes.
func (tx *Tx) VolumeOwners(ctx context.Context) (map[string]string, error) {
	ps, err := tx.GetProjects(ctx)
	if err != nil {
		return nil, err
	}

	out := make(map[string]string, len(ps))
	for _, p := range ps {
		out[p.Name], _ = VolumeOwner(p.Name, p.Config)
	}

	return out, nil
}

// CountProjectVolumes is how many custom volumes project proj owns, in all pools.
func (tx *Tx) CountProjectVolumes(ctx context.Context, proj string) (int64, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM storage_volumes
WHERE project_id = (SELECT id FROM projects WHERE name = ?)`, proj).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the storage volumes of project %s: %w", proj, err)
	}

	return n, nil
}
