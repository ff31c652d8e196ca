package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// GetNetworks returns all networks, managed or not.
func (c *Client) GetNetworks(ctx context.Context) ([]api.Network, error) {
	nets := []api.Network{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/networks?recursion=1", nil, "", &nets)
	if err != nil {
		return nil, err
	}

	return nets, nil
}

// GetNetwork returns one network and its ETag.
func (c *Client) GetNetwork(ctx context.Context, name string) (*api.Network, string, error) {
	n := api.Network{}
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0/networks/"+url.PathEscape(name), nil, "", &n)
	if err != nil {
		return nil, "", err
	}

	return &n, etag, nil
}
