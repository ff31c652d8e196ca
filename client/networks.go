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

// GetNetworkState returns the state of the host interface behind a network.
func (c *Client) GetNetworkState(ctx context.Context, name string) (*api.NetworkState, error) {
	st := api.NetworkState{}

	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/networks/"+url.PathEscape(name)+"/state", nil, "", &st)
	if err != nil {
		return nil, err
	}

	return &st, nil
}

// CreateNetwork creates a managed network (sync).
func (c *Client) CreateNetwork(ctx context.Context, req api.NetworksPost) error {
	_, _, err := c.query(ctx, http.MethodPost, "/1.0/networks", req, "")
	return err
}

// UpdateNetwork replaces a network's config and description; etag ("" for none) guards
// against a concurrent change.
func (c *Client) UpdateNetwork(ctx context.Context, name string, put api.NetworkPut, etag string) error {
	_, _, err := c.query(ctx, http.MethodPut, "/1.0/networks/"+url.PathEscape(name), put, etag)
	return err
}

// DeleteNetwork deletes a managed network; the server refuses while NICs use it.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	_, _, err := c.query(ctx, http.MethodDelete, "/1.0/networks/"+url.PathEscape(name), nil, "")
	return err
}
