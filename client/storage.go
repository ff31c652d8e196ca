package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// GetStoragePools returns all storage pools.
func (c *Client) GetStoragePools(ctx context.Context) ([]api.StoragePool, error) {
	pools := []api.StoragePool{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/storage-pools?recursion=1", nil, "", &pools)
	if err != nil {
		return nil, err
	}

	return pools, nil
}

// GetStoragePool returns one storage pool and its ETag.
func (c *Client) GetStoragePool(ctx context.Context, name string) (*api.StoragePool, string, error) {
	p := api.StoragePool{}
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0/storage-pools/"+url.PathEscape(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}

	return &p, etag, nil
}
