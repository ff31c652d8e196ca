package client

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

// GetCluster returns GET /1.0/cluster and its ETag.
func (c *Client) GetCluster(ctx context.Context) (api.Cluster, string, error) {
	var out api.Cluster
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0/cluster", nil, "", &out)
	return out, etag, err
}

// UpdateCluster sends PUT /1.0/cluster: enable clustering (ServerName, Enabled) or join
// a cluster (ServerName, ServerAddress, ClusterToken, Enabled). The server restarts
// itself once the operation has succeeded.
func (c *Client) UpdateCluster(ctx context.Context, req api.ClusterPut, etag string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, "/1.0/cluster", req, etag)
}
