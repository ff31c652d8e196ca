package client

import (
	"context"

	"github.com/berth-dev/berth/shared/api"
)

// MigrateInstance makes the server the source of a migration of instance name (POST
// /1.0/instances/{name} with migration): without req.Target its operation holds the
// control and fs websockets, their secrets in its metadata, for the target to dial
// (pull); with it, the server dials the target's (push).
func (c *Client) MigrateInstance(ctx context.Context, name string, req api.InstancePost) (*Operation, error) {
	req.Migration = true
	return c.queryOperation(ctx, "POST", instancePath(name), req, "")
}

// MigrationSecrets are the websocket secrets in a migration operation's metadata.
func MigrationSecrets(op *Operation) map[string]string {
	out := map[string]string{}
	for k, v := range op.Metadata {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}

	return out
}
