package client

import (
	"context"
	"net/http"
)

// UpdateServerConfig replaces the server configuration (PUT /1.0); a non-empty etag is
// sent as If-Match.
func (c *Client) UpdateServerConfig(ctx context.Context, config map[string]string, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, "/1.0", map[string]any{"config": config}, etag, nil)
	return err
}
