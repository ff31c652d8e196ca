package client

import (
	"context"
	"net/http"

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
