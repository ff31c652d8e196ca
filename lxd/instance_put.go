package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// PUT /1.0/instances/{name}: replace the writable fields (config, devices, profiles,
// ephemeral, description) or, with "restore", roll back to a snapshot. The If-Match ETag
// and every key are checked before the operation starts (412, 400 naming the key);
// the operation writes the change and applies it to a running container.
func instancePut(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstancePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Restore != "" {
		return instanceRestore(d, r, name, req)
	}

	return instanceUpdate(d, r, name, req)
}

// PATCH /1.0/instances/{name}: like PUT, but config and devices are merged into the
// current ones (a device given in full replaces that device) and absent fields are kept.
func instancePatch(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	cur, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	patch := map[string]json.RawMessage{}
	err = decodeJSON(r, &patch)
	if err != nil {
		return response.SmartError(err)
	}

	req, err := applyInstancePatch(cur.InstancePut, patch)
	if err != nil {
		return response.BadRequest(err)
	}

	return instanceUpdate(d, r, name, req)
}

// applyInstancePatch returns cur with a PATCH body's fields applied: config and devices
// merged (a device given in full replaces that device), the other fields replaced, an
// unknown field refused (400). cur's maps are copied, never changed.
func applyInstancePatch(cur api.InstancePut, patch map[string]json.RawMessage) (api.InstancePut, error) {
	req := cur
	req.Config = make(map[string]string, len(cur.Config))
	for k, v := range cur.Config {
		req.Config[k] = v
	}

	req.Devices = make(map[string]map[string]string, len(cur.Devices))
	for k, v := range cur.Devices {
		req.Devices[k] = v
	}

	for key, raw := range patch {
		var err error
		switch key {
		case "config":
			add := map[string]string{}
			err = json.Unmarshal(raw, &add)
			for k, v := range add {
				req.Config[k] = v
			}
		case "devices":
			add := map[string]map[string]string{}
			err = json.Unmarshal(raw, &add)
			for k, v := range add {
				req.Devices[k] = v
			}
		case "profiles":
			err = json.Unmarshal(raw, &req.Profiles)
		case "ephemeral":
			err = json.Unmarshal(raw, &req.Ephemeral)
		case "description":
			err = json.Unmarshal(raw, &req.Description)
		case "architecture":
			err = json.Unmarshal(raw, &req.Architecture)
		case "stateful":
			err = json.Unmarshal(raw, &req.Stateful)
		default:
			return api.InstancePut{}, api.StatusErrorf(http.StatusBadRequest, "field %q cannot be patched", key)
		}

		if err != nil {
			return api.InstancePut{}, api.StatusErrorf(http.StatusBadRequest, "field %q: %v", key, err)
		}
	}

	return req, nil
}

func instanceUpdate(d *Daemon, r *http.Request, name string, req api.InstancePut) response.Response {
	cur, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, instance.ETag(&cur.Instance))
	if err != nil {
		return response.SmartError(err)
	}

	upd, err := d.instances.PrepareUpdate(r.Context(), name, req)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Updating instance", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Update(ctx, upd)
	})
}
