package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

func instancePath(name string) string {
	return "/1.0/instances/" + url.PathEscape(name)
}

// GetInstanceNames returns the names of all instances.
func (c *Client) GetInstanceNames(ctx context.Context) ([]string, error) {
	urls := []string{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances", nil, "", &urls)
	if err != nil {
		return nil, err
	}

	return urlsToNames("/1.0/instances/", urls)
}

// GetInstances returns all instances (recursion=1).
func (c *Client) GetInstances(ctx context.Context) ([]api.Instance, error) {
	insts := []api.Instance{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances?recursion=1", nil, "", &insts)
	if err != nil {
		return nil, err
	}

	return insts, nil
}

// GetInstancesFull returns all instances with state and snapshots
// (recursion=2, and the empty filter `lxc list` sends).
func (c *Client) GetInstancesFull(ctx context.Context) ([]api.InstanceFull, error) {
	insts := []api.InstanceFull{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances?filter=&recursion=2", nil, "", &insts)
	if err != nil {
		return nil, err
	}

	return insts, nil
}

// GetInstancesFullInto decodes the answer of GetInstancesFull into target, a pointer to
// a slice of the caller's type: a caller that reads a few fields of each instance (a
// table of 500) decodes only those, where api.InstanceFull costs every map of every
// instance. omit names the parts the caller does not read ("config", "devices"): a
// berthd leaves them out of the answer (null; API extension instances_list_omit), LXD
// ignores the parameter and sends them.
func (c *Client) GetInstancesFullInto(ctx context.Context, target any, omit ...string) error {
	path := "/1.0/instances?filter=&recursion=2"
	if len(omit) > 0 {
		path += "&omit=" + url.QueryEscape(strings.Join(omit, ","))
	}

	_, err := c.queryList(ctx, http.MethodGet, path, target)
	return err
}

// GetInstance returns one instance and its ETag.
func (c *Client) GetInstance(ctx context.Context, name string) (*api.Instance, string, error) {
	inst := api.Instance{}
	etag, err := c.queryStruct(ctx, http.MethodGet, instancePath(name), nil, "", &inst)
	if err != nil {
		return nil, "", err
	}

	return &inst, etag, nil
}

// GetInstanceFull returns one instance with state and snapshots (recursion=1).
func (c *Client) GetInstanceFull(ctx context.Context, name string) (*api.InstanceFull, string, error) {
	inst := api.InstanceFull{}
	etag, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"?recursion=1", nil, "", &inst)
	if err != nil {
		return nil, "", err
	}

	return &inst, etag, nil
}

// GetInstanceState returns the runtime state of an instance.
func (c *Client) GetInstanceState(ctx context.Context, name string) (*api.InstanceState, error) {
	st := api.InstanceState{}
	_, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"/state", nil, "", &st)
	if err != nil {
		return nil, err
	}

	return &st, nil
}

// CreateInstance creates an instance. The new name is in op.InstanceName().
func (c *Client) CreateInstance(ctx context.Context, req api.InstancesPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, "/1.0/instances", req, "")
}

// LaunchInstance is CreateInstance for a request with Start (instance_create_start), whose
// caller only waits for the end: as ChangeInstanceState, no event stream is opened ahead
// of the request, and the end is awaited with GET /1.0/operations/{id}/wait.
func (c *Client) LaunchInstance(ctx context.Context, req api.InstancesPost) (*Operation, error) {
	return c.queryOperationBackground(ctx, http.MethodPost, "/1.0/instances", req)
}

// UpdateInstanceState starts, stops, restarts, freezes or unfreezes an instance.
func (c *Client) UpdateInstanceState(ctx context.Context, name string, req api.InstanceStatePut) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name)+"/state", req, "")
}

// ChangeInstanceState is UpdateInstanceState for a caller that only waits for the end (a
// state change reports no progress): the request goes first, and the end is awaited with
// GET /1.0/operations/{id}/wait, so no event stream is opened ahead of it and the server
// starts the change one round trip earlier.
func (c *Client) ChangeInstanceState(ctx context.Context, name string, req api.InstanceStatePut) (*Operation, error) {
	return c.queryOperationBackground(ctx, http.MethodPut, instancePath(name)+"/state", req)
}

// UpdateInstance replaces the writable fields of an instance; a non-empty
// etag is sent as If-Match.
func (c *Client) UpdateInstance(ctx context.Context, name string, req api.InstancePut, etag string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name), req, etag)
}

// DeleteInstance deletes a stopped instance and its snapshots.
func (c *Client) DeleteInstance(ctx context.Context, name string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, instancePath(name), nil, "")
}

// RenameInstance renames a stopped instance (POST /1.0/instances/{name}).
func (c *Client) RenameInstance(ctx context.Context, name, newName string) (*Operation, error) {
	return c.queryOperation(ctx, "POST", instancePath(name), map[string]any{"name": newName, "migration": false}, "")
}
