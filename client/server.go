package client

import (
	"context"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/shared/api"
)

// GetServer returns the server document (GET /1.0) and its ETag.
func (c *Client) GetServer(ctx context.Context) (*api.Server, string, error) {
	s := api.Server{}
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0", nil, "", &s)
	if err != nil {
		return nil, "", err
	}

	return &s, etag, nil
}

// HasExtension says whether the server advertises API extension name (GET /1.0).
func (c *Client) HasExtension(ctx context.Context, name string) (bool, error) {
	s, _, err := c.GetServer(ctx)
	if err != nil {
		return false, err
	}

	return slices.Contains(s.APIExtensions, name), nil
}
