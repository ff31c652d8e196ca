package instance

import (
	"context"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// profileKeys maps the profile names a request gives for instance key inst to profile
// keys (shared/project.ProfileKey): the instance's project's own profiles with
// features.profiles, else the default project's. Rows and expansion work on keys; the
// API shows names (render). A name holding '/' is refused: it could otherwise spell
// another project's key.
func profileKeys(ctx context.Context, tx *db.Tx, inst string, names []string) ([]string, error) {
	if names == nil {
		return nil, nil
	}

	owner, err := tx.ProfileProject(ctx, project.Of(inst))
	if err != nil {
		return nil, err
	}

	out := make([]string, 0, len(names))
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, api.StatusErrorf(http.StatusBadRequest, "profile name %q is not allowed", n)
		}

		out = append(out, project.ProfileKey(owner, n))
	}

	return out, nil
}

// withProfileKeys is profileKeys in its own read transaction.
func withProfileKeys(ctx context.Context, d *db.DB, inst string, names []string) ([]string, error) {
	var out []string
	err := d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		out, err = profileKeys(ctx, tx, inst, names)
		return err
	})

	return out, err
}
