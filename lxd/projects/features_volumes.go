package projects

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// featureVolumes gives a project custom storage volumes of its own (lxd/volumes keys
// them by project, shared/project VolumeKey); without it the project's instances and
// requests use the default project's, as in LXD.
const featureVolumes = "features.storage.volumes"

// checkVolumeConfig refuses a config change (cur is nil for a new project) that would
// leave a restricted project using the default project's volumes, and a change of
// features.storage.volumes on a project that owns volumes (they would be orphaned or
// shadowed; changeFeatures refuses one with instances).
//
// A restricted project without volumes of its own that predates this check keeps its
// config, but reaches no volume at all (db.VolumeOwner): fail closed either way.
func checkVolumeConfig(ctx context.Context, tx *db.Tx, proj string, cur, next map[string]string) error {
	curOwn := validate.IsTrue(cur[featureVolumes])
	nextOwn := validate.IsTrue(next[featureVolumes])
	wasOpen := cur != nil && validate.IsTrue(cur["restricted"]) && !curOwn
	if validate.IsTrue(next["restricted"]) && !nextOwn && !wasOpen {
		return api.StatusErrorf(http.StatusBadRequest,
			"project %q: a restricted project (restricted=true) needs storage volumes of its own (features.storage.volumes=true): it may not use the default project's", proj)
	}

	if cur == nil || curOwn == nextOwn {
		return nil
	}

	n, err := tx.CountProjectVolumes(ctx, proj)
	if err != nil {
		return err
	}

	if n > 0 {
		return api.StatusErrorf(http.StatusBadRequest,
			"features can only be changed on empty projects: %q has %d storage volumes (changing %s)", proj, n, featureVolumes)
	}

	return nil
}

// checkNoVolumes refuses renaming or deleting a project that owns volumes: their keys and
// host-side names carry its name.
func checkNoVolumes(ctx context.Context, tx *db.Tx, proj, what string) error {
	if proj == db.DefaultProjectName {
		return nil // refused elsewhere, with a 403
	}

	n, err := tx.CountProjectVolumes(ctx, proj)
	if err != nil {
		return err
	}

	if n > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "only projects without storage volumes can be %s: %q has %d", what, proj, n)
	}

	return nil
}
