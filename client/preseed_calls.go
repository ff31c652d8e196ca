package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// The calls a preseed makes beyond the client's others: storage pools and projects
// written, networks in a project.

// inProject adds ?project= to path for a project other than the default one.
func inProject(path, project string) string {
	if project == "" || project == "default" {
		return path
	}

	return path + "?project=" + url.QueryEscape(project)
}

func (c *Client) getProjectNetwork(ctx context.Context, project, name string) (*api.Network, string, error) {
	n := api.Network{}
	etag, err := c.queryStruct(ctx, http.MethodGet, inProject("/1.0/networks/"+url.PathEscape(name), project), nil, "", &n)
	if err != nil {
		return nil, "", err
	}

	return &n, etag, nil
}

func (c *Client) createProjectNetwork(ctx context.Context, project string, req api.NetworksPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, inProject("/1.0/networks", project), req, "", nil)
	return err
}

func (c *Client) updateProjectNetwork(ctx context.Context, project, name string, put api.NetworkPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, inProject("/1.0/networks/"+url.PathEscape(name), project), put, etag, nil)
	return err
}

func (c *Client) deleteProjectNetwork(ctx context.Context, project, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, inProject("/1.0/networks/"+url.PathEscape(name), project), nil, "", nil)
	return err
}

// CreateStoragePool creates a storage pool.
func (c *Client) CreateStoragePool(ctx context.Context, req api.StoragePoolsPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/storage-pools", req, "", nil)
	return err
}

// UpdateStoragePool replaces a pool's config and description; a non-empty etag is sent
// as If-Match.
func (c *Client) UpdateStoragePool(ctx context.Context, name string, put api.StoragePoolPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, "/1.0/storage-pools/"+url.PathEscape(name), put, etag, nil)
	return err
}

// DeleteStoragePool deletes a storage pool; the server refuses one in use.
func (c *Client) DeleteStoragePool(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, "/1.0/storage-pools/"+url.PathEscape(name), nil, "", nil)
	return err
}

func projectPath(name string) string { return "/1.0/projects/" + url.PathEscape(name) }

// GetProject returns one project and its ETag.
func (c *Client) GetProject(ctx context.Context, name string) (*api.Project, string, error) {
	p := api.Project{}
	etag, err := c.queryStruct(ctx, http.MethodGet, projectPath(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}

	return &p, etag, nil
}

// CreateProject creates a project.
func (c *Client) CreateProject(ctx context.Context, req api.ProjectsPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/projects", req, "", nil)
	return err
}

// UpdateProject replaces a project's config and description.
func (c *Client) UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, projectPath(name), put, etag, nil)
	return err
}

// DeleteProject deletes an empty project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, projectPath(name), nil, "", nil)
	return err
}
