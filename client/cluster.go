package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// The cluster members API (issue 16). Joining (tokens) and enabling are
// cluster_core.go's.

func clusterMemberPath(name string) string {
	return "/1.0/cluster/members/" + url.PathEscape(name)
}

// GetClusterMembers returns every member of the cluster (on a server that is not
// clustered: itself, "none").
func (c *Client) GetClusterMembers(ctx context.Context) ([]api.ClusterMember, error) {
	out := []api.ClusterMember{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/cluster/members?recursion=1", nil, "", &out)
	if err != nil {
		return nil, err
	}

	return out, nil
}

// GetClusterMember returns one member and its ETag.
func (c *Client) GetClusterMember(ctx context.Context, name string) (*api.ClusterMember, string, error) {
	m := api.ClusterMember{}
	etag, err := c.queryStruct(ctx, http.MethodGet, clusterMemberPath(name), nil, "", &m)
	if err != nil {
		return nil, "", err
	}

	return &m, etag, nil
}

// UpdateClusterMember replaces a member's description and failure domain (its roles
// are read only: send them back unchanged or not at all); a non-empty etag is sent as
// If-Match.
func (c *Client) UpdateClusterMember(ctx context.Context, name string, req api.ClusterMemberPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, clusterMemberPath(name), req, etag, nil)
	return err
}

// RenameClusterMember renames a member.
func (c *Client) RenameClusterMember(ctx context.Context, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, clusterMemberPath(name), api.ClusterMemberPost{ServerName: newName}, "", nil)
	return err
}

// DeleteClusterMember removes a member from the cluster; force removes one that still
// has instances (their records go with it) or whose database node cannot be reached.
func (c *Client) DeleteClusterMember(ctx context.Context, name string, force bool) error {
	path := clusterMemberPath(name)
	if force {
		path += "?force=1"
	}

	_, err := c.queryStruct(ctx, http.MethodDelete, path, nil, "", nil)
	return err
}
