package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

func backupPath(name, backup string) string {
	return instancePath(name) + "/backups/" + url.PathEscape(backup)
}

// CreateInstanceBackup writes a backup of an instance on the server (lxc export's first
// step); the backup's URL is in the operation's resources.
func (c *Client) CreateInstanceBackup(ctx context.Context, name string, req api.InstanceBackupsPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(name)+"/backups", req, "")
}

// GetInstanceBackupFile streams a backup tarball to w.
func (c *Client) GetInstanceBackupFile(ctx context.Context, name, backup string, w io.Writer) error {
	resp, err := c.rawRequest(ctx, http.MethodGet, backupPath(name, backup)+"/export", nil, nil)
	if err != nil {
		return err
	}

	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _, err := parseResponse(resp, backupPath(name, backup))
		if err == nil {
			err = fmt.Errorf("downloading backup: %s", resp.Status)
		}

		return err
	}

	_, err = io.Copy(w, resp.Body)
	return err
}

// DeleteInstanceBackup deletes a backup on the server.
func (c *Client) DeleteInstanceBackup(ctx context.Context, name, backup string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, backupPath(name, backup), nil, "")
}

// CreateInstanceFromBackup uploads a backup tarball to create an instance (lxc import);
// a non-empty name overrides the one in the backup.
func (c *Client) CreateInstanceFromBackup(ctx context.Context, r io.Reader, name string) (*Operation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/1.0/instances", r)
	if err != nil {
		return nil, err
	}

	if n := readerSize(r); n >= 0 {
		req.ContentLength = n
	}

	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("User-Agent", c.userAgent)
	if name != "" {
		req.Header.Set("X-LXD-name", name)
	}

	listener, _ := c.getEvents(ctx, api.EventTypeOperation)
	resp, err := c.http.Do(req)
	if err != nil {
		listener.Disconnect()
		return nil, fmt.Errorf("uploading backup: %w", unwrapURLError(err))
	}

	defer func() { _ = resp.Body.Close() }()
	r2, _, err := parseResponse(resp, "/1.0/instances")
	if err != nil {
		listener.Disconnect()
		return nil, err
	}

	return c.newOperation(r2, http.MethodPost, "/1.0/instances", listener)
}

// RenameInstanceBackup renames a backup of an instance.
func (c *Client) RenameInstanceBackup(ctx context.Context, name, backup, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, backupPath(name, backup), api.InstanceBackupPost{Name: newName}, "")
}
