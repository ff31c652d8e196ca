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

func profilePath(name string) string {
	return "/1.0/profiles/" + url.PathEscape(name)
}

// CreateProfile creates a profile.
func (c *Client) CreateProfile(ctx context.Context, req api.ProfilesPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/profiles", req, "", nil)
	return err
}

// UpdateProfile replaces a profile's config, description and devices; a non-empty etag
// is sent as If-Match. The server re-applies it to the running instances using it.
func (c *Client) UpdateProfile(ctx context.Context, name string, req api.ProfilePut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, profilePath(name), req, etag, nil)
	return err
}

// RenameProfile renames a profile (not "default").
func (c *Client) RenameProfile(ctx context.Context, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, profilePath(name), map[string]string{"name": newName}, "", nil)
	return err
}

// DeleteProfile deletes a profile no instance uses.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, profilePath(name), nil, "", nil)
	return err
}
