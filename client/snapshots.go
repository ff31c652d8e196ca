package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

func snapshotPath(name, snap string) string {
	return instancePath(name) + "/snapshots/" + url.PathEscape(snap)
}

// GetInstanceSnapshots returns an instance's snapshots, oldest first.
func (c *Client) GetInstanceSnapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	snaps := []api.InstanceSnapshot{}
	_, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"/snapshots?recursion=1", nil, "", &snaps)
	if err != nil {
		return nil, err
	}

	return snaps, nil
}

// GetInstanceSnapshot returns one snapshot.
func (c *Client) GetInstanceSnapshot(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error) {
	s := api.InstanceSnapshot{}
	_, err := c.queryStruct(ctx, http.MethodGet, snapshotPath(name, snap), nil, "", &s)
	if err != nil {
		return nil, err
	}

	return &s, nil
}

// CreateInstanceSnapshot snapshots an instance; an empty req.Name lets the server pick.
func (c *Client) CreateInstanceSnapshot(ctx context.Context, name string, req api.InstanceSnapshotsPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(name)+"/snapshots", req, "")
}

// RenameInstanceSnapshot renames a snapshot.
func (c *Client) RenameInstanceSnapshot(ctx context.Context, name, snap, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, snapshotPath(name, snap), api.InstanceSnapshotPost{Name: newName}, "")
}

// UpdateInstanceSnapshot sets a snapshot's expiry, the one field LXD lets a client change
// (a zero time: never). etag, if not empty, must match the snapshot's current ETag.
func (c *Client) UpdateInstanceSnapshot(ctx context.Context, name, snap string, put api.InstanceSnapshotPut, etag string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, snapshotPath(name, snap), put, etag)
}

// DeleteInstanceSnapshot deletes a snapshot.
func (c *Client) DeleteInstanceSnapshot(ctx context.Context, name, snap string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, snapshotPath(name, snap), nil, "")
}

// RestoreInstanceSnapshot rolls an instance back to one of its snapshots (PUT with
// "restore", as lxc restore sends it).
func (c *Client) RestoreInstanceSnapshot(ctx context.Context, name, snap string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name), api.InstancePut{Restore: name + "/" + snap}, "")
}
