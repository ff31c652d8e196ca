package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/profiles"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/profiles
func profilesGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.profiles.List(r.Context(), projectOf(r))
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
	p, err := d.profiles.Get(r.Context(), projectOf(r), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, p, profiles.ETag(p))
}

// POST /1.0/profiles: create (sync, 201 with Location as LXD).
func profilesPost(d *Daemon, r *http.Request) response.Response {
	req := api.ProfilesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.profiles.Create(r.Context(), projectOf(r), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("profiles", []string{req.Name})[0])
}

// PUT /1.0/profiles/{name}: replace config, description and devices (sync, If-Match
// optional), then re-apply to every running instance using the profile.
func profilePut(d *Daemon, r *http.Request) response.Response {
	req := api.ProfilePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.profiles.Replace(r.Context(), projectOf(r), pathVar(r, "name"), r.Header.Get("If-Match"), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// PATCH /1.0/profiles/{name}: merge config and devices, keep what is absent.
func profilePatch(d *Daemon, r *http.Request) response.Response {
	req := profiles.Patch{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.profiles.Merge(r.Context(), projectOf(r), pathVar(r, "name"), r.Header.Get("If-Match"), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// POST /1.0/profiles/{name}: rename. The default profile keeps its name.
func profilePost(d *Daemon, r *http.Request) response.Response {
	req := struct {
		Name string `json:"name"`
	}{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.profiles.Rename(r.Context(), projectOf(r), pathVar(r, "name"), req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("profiles", []string{req.Name})[0])
}

// DELETE /1.0/profiles/{name}: refused for default (400) and while in use (409).
func profileDelete(d *Daemon, r *http.Request) response.Response {
	err := d.profiles.Delete(r.Context(), projectOf(r), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
