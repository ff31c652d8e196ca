package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// instanceMetadata is what the metadata handlers use of the instance manager
// (*instance.Manager); the fake instances of the handler tests do not have it.
type instanceMetadata interface {
	Metadata(ctx context.Context, name string) (*api.ImageMetadata, error)
	UpdateMetadata(ctx context.Context, name string, update func(*api.ImageMetadata) error) error
	Templates(ctx context.Context, name string) ([]string, error)
	Template(ctx context.Context, name, file string) ([]byte, error)
	PutTemplate(ctx context.Context, name, file string, r io.Reader) error
	DeleteTemplate(ctx context.Context, name, file string) error
}

func (d *Daemon) instanceMetadata() (instanceMetadata, error) {
	m, ok := d.instances.(instanceMetadata)
	if !ok {
		return nil, api.StatusErrorf(http.StatusNotImplemented, "instance metadata is not served by this daemon")
	}

	return m, nil
}

// GET /1.0/instances/{name}/metadata: the instance's copy of its image's metadata.yaml.
func instanceMetadataGet(d *Daemon, r *http.Request) response.Response {
	m, err := d.instanceMetadata()
	if err != nil {
		return response.SmartError(err)
	}

	meta, err := m.Metadata(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, meta, meta)
}

// PUT /1.0/instances/{name}/metadata replaces it (If-Match checked); PATCH decodes the
// body over the current value (LXD's semantics: maps merged, other fields replaced).
func instanceMetadataPut(d *Daemon, r *http.Request) response.Response {
	return updateInstanceMetadata(d, r, false)
}

func instanceMetadataPatch(d *Daemon, r *http.Request) response.Response {
	return updateInstanceMetadata(d, r, true)
}

func updateInstanceMetadata(d *Daemon, r *http.Request, patch bool) response.Response {
	m, err := d.instanceMetadata()
	if err != nil {
		return response.SmartError(err)
	}

	// The body is read before the update takes its lock.
	var body json.RawMessage
	err = decodeJSON(r, &body)
	if err != nil {
		return response.SmartError(err)
	}

	err = m.UpdateMetadata(r.Context(), pathVar(r, "name"), func(cur *api.ImageMetadata) error {
		err := etag.Check(r, cur)
		if err != nil {
			return err
		}

		if !patch {
			*cur = api.ImageMetadata{}
		}

		err = json.Unmarshal(body, cur)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "malformed metadata: %v", err)
		}

		return nil
	})

	return response.SmartError(err)
}

// GET /1.0/instances/{name}/metadata/templates: the template files, or with ?path= the
// content of one.
func instanceTemplatesGet(d *Daemon, r *http.Request) response.Response {
	m, err := d.instanceMetadata()
	if err != nil {
		return response.SmartError(err)
	}

	name, file := pathVar(r, "name"), r.URL.Query().Get("path")
	if file == "" {
		names, err := m.Templates(r.Context(), name)
		if err != nil {
			return response.SmartError(err)
		}

		return response.SyncResponse(true, names)
	}

	data, err := m.Template(r.Context(), name, file)
	if err != nil {
		return response.SmartError(err)
	}

	return response.RawResponse(file, int64(len(data)), time.Time{}, nil, bytes.NewReader(data))
}

// POST (and PUT, which lxc's template edit sends) /1.0/instances/{name}/metadata/templates?path=:
// the body is the template file's new content.
func instanceTemplatesPost(d *Daemon, r *http.Request) response.Response {
	m, err := d.instanceMetadata()
	if err != nil {
		return response.SmartError(err)
	}

	file := r.URL.Query().Get("path")
	if file == "" {
		return response.BadRequest(fmt.Errorf("missing path argument"))
	}

	// Read before the write takes its lock; one byte over the cap makes PutTemplate's 413.
	data, err := io.ReadAll(io.LimitReader(r.Body, instance.MaxTemplateSize+1))
	if err != nil {
		return response.SmartError(err)
	}

	err = m.PutTemplate(r.Context(), pathVar(r, "name"), file, bytes.NewReader(data))
	return response.SmartError(err)
}

// DELETE /1.0/instances/{name}/metadata/templates?path=
func instanceTemplatesDelete(d *Daemon, r *http.Request) response.Response {
	m, err := d.instanceMetadata()
	if err != nil {
		return response.SmartError(err)
	}

	file := r.URL.Query().Get("path")
	if file == "" {
		return response.BadRequest(fmt.Errorf("missing path argument"))
	}

	err = m.DeleteTemplate(r.Context(), pathVar(r, "name"), file)
	return response.SmartError(err)
}
