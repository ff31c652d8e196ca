package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// volumeBackups is the backup half of lxd/volumes (lxc storage volume export/import).
type volumeBackups interface {
	Backups(ctx context.Context, pool, name string) ([]string, error)
	BackupFile(pool, name, b string) (string, error)
	NextBackupName(pool, name string) string
	CreateBackup(ctx context.Context, pool, name, b string, volumeOnly bool, compression string) error
	DeleteBackup(pool, name, b string) error
	Import(ctx context.Context, pool, file, name string) (string, error)
	BackupDir(pool, name string) string
}

func volumeBackupURL(pool, name, b string) string {
	return volumes.URL(pool, name, "backups", b)
}

// GET .../volumes/{type}/{volume}/backups
func storageVolumeBackupsGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	list, err := d.volumes.Backups(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		out := []api.StoragePoolVolumeBackup{}
		for _, b := range list {
			out = append(out, api.StoragePoolVolumeBackup{Name: b})
		}

		return response.SyncResponse(true, out)
	}

	urls := []string{}
	for _, b := range list {
		urls = append(urls, volumeBackupURL(pool, name, b))
	}

	return response.SyncResponse(true, urls)
}

// POST .../volumes/{type}/{volume}/backups (an operation whose resources name the backup)
func storageVolumeBackupsPost(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StoragePoolVolumeBackupsPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	_, err = d.volumes.Get(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Name == "" {
		req.Name = d.volumes.NextBackupName(pool, name)
	}

	err = volumes.ValidateName("backup", req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	// lxc 5.0 reads the backup's name as what follows /1.0/backups/ (as for instances).
	resources := volumeResources(pool, name)
	resources["backups"] = []string{"/1.0/backups/" + req.Name}
	return d.task("Backing up storage volume", resources, func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.CreateBackup(ctx, pool, name, req.Name, req.VolumeOnly, req.CompressionAlgorithm)
	})
}

// GET .../backups/{backup}
func storageVolumeBackupGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	p, err := d.volumes.BackupFile(pool, name, pathVar(r, "backup"))
	if err != nil {
		return response.SmartError(err)
	}

	st, err := os.Stat(p)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, api.StoragePoolVolumeBackup{Name: pathVar(r, "backup"), CreatedAt: st.ModTime().UTC(), ExpiresAt: st.ModTime().UTC().Add(24 * time.Hour)})
}

// DELETE .../backups/{backup} (an operation, as LXD)
func storageVolumeBackupDelete(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	b := pathVar(r, "backup")
	_, err = d.volumes.BackupFile(pool, name, b)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Deleting storage volume backup", map[string][]string{"backups": {volumeBackupURL(pool, name, b)}}, func(context.Context, *operations.Operation) error {
		return d.volumes.DeleteBackup(pool, name, b)
	})
}

// GET .../backups/{backup}/export
func storageVolumeBackupExport(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	b := pathVar(r, "backup")
	p, err := d.volumes.BackupFile(pool, name, b)
	if err != nil {
		return response.SmartError(err)
	}

	return response.FileResponse(p, b+".tar.gz", nil)
}

// storageVolumesPostBackup answers POST .../volumes/custom with a raw backup as the body
// (lxc storage volume import): spooled to disk (at most volumes.MaxImportSize, and never into the disk's last GiB), then
// checked and unpacked in the operation. X-LXD-name overrides the name in the backup.
func storageVolumesPostBackup(d *Daemon, r *http.Request) response.Response {
	pool := pathVar(r, "name")
	_, err := d.volumes.List(r.Context(), pool)
	if err != nil {
		return response.SmartError(err)
	}

	dir := d.volumes.BackupDir("", "")
	err = os.MkdirAll(dir, 0o700)
	if err != nil {
		return response.SmartError(err)
	}

	limit, err := volumes.SpoolLimit(dir)
	if err != nil {
		return response.SmartError(err)
	}

	f, err := os.CreateTemp(dir, ".upload-")
	if err != nil {
		return response.SmartError(err)
	}

	n, err := io.Copy(f, io.LimitReader(r.Body, limit+1))
	closeErr := f.Close()
	if err == nil {
		err = closeErr
	}

	if err == nil && n > limit {
		err = api.StatusErrorf(http.StatusRequestEntityTooLarge, "volume backup larger than %d bytes (at most %d, and never the last %d free bytes of the disk)", limit, int64(volumes.MaxImportSize), int64(1<<30))
	}

	if err != nil {
		_ = os.Remove(f.Name())
		return response.SmartError(fmt.Errorf("receiving volume backup: %w", err))
	}

	// The volume's key in r's project: its project's prefix alone when the backup names it.
	name, err := importKey(r, r.Header.Get("X-LXD-name"))
	if err != nil {
		_ = os.Remove(f.Name())
		return response.SmartError(err)
	}

	return d.task("Importing storage volume", volumeResources(pool, name), func(ctx context.Context, op *operations.Operation) error {
		defer func() { _ = os.Remove(f.Name()) }()
		got, err := d.volumes.Import(ctx, pool, f.Name(), name)
		if err == nil {
			_ = op.UpdateMetadata(map[string]any{"name": project.VolumeName(got)})
		}

		return err
	})
}
