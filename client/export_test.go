package client

import (
	"context"
	"net/http"
)

// GetForTest runs a GET on an arbitrary path, to test envelope decoding.
func (c *Client) GetForTest(ctx context.Context, path string) (any, error) {
	var out any
	_, err := c.queryStruct(ctx, http.MethodGet, path, nil, "", &out)

	return out, err
}
