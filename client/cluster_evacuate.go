package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// UpdateClusterMemberState evacuates (Action "evacuate", Mode "stop" or "migrate") or
// restores (Action "restore") a cluster member: POST /1.0/cluster/members/{name}/state,
// an operation, as lxc cluster evacuate/restore send it. Any member may be asked; the
// member named does the work.
func (c *Client) UpdateClusterMemberState(ctx context.Context, name string, req api.ClusterMemberStatePost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, "/1.0/cluster/members/"+url.PathEscape(name)+"/state", req, "")
}
