package client

import (
	"context"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// MoveInstanceToMember moves stopped instance name to cluster member member, renamed
// newName unless empty (POST /1.0/instances/{name}?target= with migration, as lxc move
// --target sends it). Any member may be asked.
func (c *Client) MoveInstanceToMember(ctx context.Context, name, newName, member string) (*Operation, error) {
	return c.queryOperation(ctx, "POST", instancePath(name)+"?target="+url.QueryEscape(member), api.InstancePost{Name: newName, Migration: true}, "")
}
