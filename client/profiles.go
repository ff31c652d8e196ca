package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// GetProfiles returns all profiles.
func (c *Client) GetProfiles(ctx context.Context) ([]api.Profile, error) {
	profiles := []api.Profile{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/profiles?recursion=1", nil, "", &profiles)
	if err != nil {
		return nil, err
	}

	return profiles, nil
}

// GetProfile returns one profile and its ETag.
func (c *Client) GetProfile(ctx context.Context, name string) (*api.Profile, string, error) {
	p := api.Profile{}
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0/profiles/"+url.PathEscape(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}

	return &p, etag, nil
}
