package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
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

// profileETag covers what LXD's does: config, description, devices.
func profileETag(p *db.Profile) any {
	return []any{p.Config, p.Description, p.Devices}
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
	var row *db.Profile
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = tx.GetProfile(ctx, pathVar(r, "name"))
		if err != nil {
			return err
		}

		p, err = profileToAPI(ctx, tx, row)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, p, profileETag(row))
}

// POST /1.0/profiles: create (sync, 201 with Location as LXD).
func profilesPost(d *Daemon, r *http.Request) response.Response {
	req := api.ProfilesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validate.EntityName("profile", req.Name)
	if err != nil {
		return response.BadRequest(err)
	}

	p := db.Profile{Name: req.Name, Description: req.Description, Config: nonNilMap(req.Config), Devices: nonNilDevices(req.Devices)}
	err = d.instances.CheckNewProfile(&p)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateProfile(ctx, p)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "profile-created", "/1.0/profiles/"+p.Name, nil)
	return response.SyncResponseLocation(true, nil, "/1.0/profiles/"+p.Name)
}

// PUT /1.0/profiles/{name}: replace config, description and devices (sync, If-Match
// optional), then re-apply to every running instance using the profile.
func profilePut(d *Daemon, r *http.Request) response.Response {
	req := api.ProfilePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	return profileUpdate(d, r, pathVar(r, "name"), func(cur *db.Profile) db.Profile {
		return db.Profile{Name: cur.Name, Description: req.Description, Config: nonNilMap(req.Config), Devices: nonNilDevices(req.Devices)}
	})
}

// PATCH /1.0/profiles/{name}: merge config and devices, keep what is absent.
func profilePatch(d *Daemon, r *http.Request) response.Response {
	patch := struct {
		Config      map[string]string            `json:"config"`
		Description *string                      `json:"description"`
		Devices     map[string]map[string]string `json:"devices"`
	}{}

	err := decodeJSON(r, &patch)
	if err != nil {
		return response.SmartError(err)
	}

	return profileUpdate(d, r, pathVar(r, "name"), func(cur *db.Profile) db.Profile {
		p := db.Profile{Name: cur.Name, Description: cur.Description, Config: map[string]string{}, Devices: map[string]map[string]string{}}
		for k, v := range cur.Config {
			p.Config[k] = v
		}

		for k, v := range patch.Config {
			p.Config[k] = v
		}

		for k, v := range cur.Devices {
			p.Devices[k] = v
		}

		for k, v := range patch.Devices {
			p.Devices[k] = v
		}

		if patch.Description != nil {
			p.Description = *patch.Description
		}

		return p
	})
}

func profileUpdate(d *Daemon, r *http.Request, name string, change func(cur *db.Profile) db.Profile) response.Response {
	var cur *db.Profile
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		cur, err = tx.GetProfile(ctx, name)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	err = response.EtagCheck(r, profileETag(cur))
	if err != nil {
		return response.SmartError(err)
	}

	next := change(cur)
	err = d.instances.CheckProfile(r.Context(), name, &next)
	if err != nil {
		return response.SmartError(err)
	}

	write := func(p db.Profile) error {
		return d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateProfile(ctx, name, p)
		})
	}

	err = write(next)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.instances.ProfileChanged(r.Context(), name, cur)
	if err != nil {
		// Put the old profile back everywhere rather than leave instances half-changed.
		rerr := write(*cur)
		if rerr == nil {
			rerr = d.instances.ProfileChanged(context.Background(), name, &next)
		}

		return response.SmartError(errors.Join(err, rerr))
	}

	d.events.SendLifecycle("default", "profile-updated", "/1.0/profiles/"+name, nil)
	return response.EmptySyncResponse
}

// POST /1.0/profiles/{name}: rename. The default profile keeps its name.
func profilePost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := struct {
		Name string `json:"name"`
	}{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validate.EntityName("profile", req.Name)
	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameProfile(ctx, name, req.Name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "profile-renamed", "/1.0/profiles/"+req.Name, map[string]any{"old_name": name})
	return response.SyncResponseLocation(true, nil, "/1.0/profiles/"+req.Name)
}

// DELETE /1.0/profiles/{name}: refused for default (400) and while in use (409).
func profileDelete(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	err := d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteProfile(ctx, name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "profile-deleted", "/1.0/profiles/"+name, nil)
	return response.EmptySyncResponse
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}

	return m
}

func nonNilDevices(m map[string]map[string]string) map[string]map[string]string {
	if m == nil {
		return map[string]map[string]string{}
	}

	return m
}
