package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

func profileToAPI(ctx context.Context, tx *db.Tx, p *db.Profile) (*api.Profile, error) {
	users, err := tx.GetProfileUsedBy(ctx, p.Name)
	if err != nil {
		return nil, err
	}

	return &api.Profile{
		ProfilePut: api.ProfilePut{Config: p.Config, Description: p.Description, Devices: p.Devices},
		Name:       p.Name,
		UsedBy:     urlsOf("instances", users),
	}, nil
}

// GET /1.0/profiles
func profilesGet(d *Daemon, r *http.Request) response.Response {
	var list []api.Profile
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetProfiles(ctx)
		if err != nil {
			return err
		}

		for i := range rows {
			p, err := profileToAPI(ctx, tx, &rows[i])
			if err != nil {
				return err
			}

			list = append(list, *p)
		}

		return nil
	})
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	names := []string{}
	for _, p := range list {
		names = append(names, p.Name)
	}

	return response.SyncResponse(true, urlsOf("profiles", names))
}

// GET /1.0/profiles/{name}
func profileGet(d *Daemon, r *http.Request) response.Response {
	var p *api.Profile
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetProfile(ctx, pathVar(r, "name"))
		if err != nil {
			return err
		}

		p, err = profileToAPI(ctx, tx, row)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, p, []any{p.Config, p.Description, p.Devices})
}
