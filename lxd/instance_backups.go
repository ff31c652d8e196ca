package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Backups are files: $BERTH_DIR/backups/<instance>/<backup>.tar.gz with a <backup>.json
// holding the api.InstanceBackup, written once the tarball is complete. `lxc export`
// creates one, downloads it from .../export and deletes it.

func (d *Daemon) backupFile(name, backup string) string {
	return filepath.Join(d.backups.Dir(), name, backup+".tar.gz")
}

func backupURL(key, backup string) string {
	return "/1.0/instances/" + url.PathEscape(project.Name(key)) + "/backups/" + url.PathEscape(backup)
}

func validBackupName(s string) error {
	if s == "" || strings.HasPrefix(s, ".") || strings.ContainsAny(s, "/\x00") || len(s) > 200 {
		return api.StatusErrorf(http.StatusBadRequest, "invalid backup name %q", s)
	}

	return nil
}

func (d *Daemon) listBackups(name string) ([]api.InstanceBackup, error) {
	matches, _ := filepath.Glob(filepath.Join(d.backups.Dir(), name, "*.json"))
	out := []api.InstanceBackup{}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}

		b := api.InstanceBackup{}
		if json.Unmarshal(data, &b) == nil {
			out = append(out, b)
		}
	}

	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// GET /1.0/instances/{name}/backups
func instanceBackupsGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	err := d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	list, err := d.listBackups(name)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	urls := []string{}
	for _, b := range list {
		urls = append(urls, instanceURL(r, name)+"/backups/"+url.PathEscape(b.Name))
	}

	return response.SyncResponse(true, urls)
}

// POST /1.0/instances/{name}/backups: write a backup tarball (operation).
func instanceBackupsPost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstanceBackupsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Name == "" {
		for i := 0; ; i++ {
			req.Name = fmt.Sprintf("backup%d", i)
			if _, err := os.Stat(d.backupFile(name, req.Name)); os.IsNotExist(err) {
				break
			}
		}
	}

	err = validBackupName(req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	if _, err := os.Stat(d.backupFile(name, req.Name)); err == nil {
		return response.Conflict(fmt.Errorf("backup %q already exists", req.Name))
	}

	backup := api.InstanceBackup{
		Name: req.Name, CreatedAt: time.Now().UTC(), ExpiresAt: req.ExpiresAt,
		InstanceOnly: req.InstanceOnly || req.ContainerOnly, ContainerOnly: req.InstanceOnly || req.ContainerOnly,
	}

	// lxc 5.0 takes the backup's name by trimming "/1.0/backups/" off this resource.
	resources := map[string][]string{"instances": {projects.InstanceURL(name)}, "backups": {"/1.0/backups/" + req.Name}}
	return d.treeTask("Backing up instance", "create_backup", resources, func(ctx context.Context, op *operations.Operation) error {
		return d.writeBackup(ctx, name, backup)
	})
}

func (d *Daemon) writeBackup(ctx context.Context, name string, backup api.InstanceBackup) error {
	dir := filepath.Join(d.backups.Dir(), name)
	err := os.MkdirAll(dir, 0o700)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}

	defer os.Remove(tmp.Name())
	err = d.backups.Export(ctx, name, backup.InstanceOnly, tmp)
	closeErr := tmp.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		return fmt.Errorf("exporting %q: %w", name, err)
	}

	err = os.Rename(tmp.Name(), d.backupFile(name, backup.Name))
	if err != nil {
		return err
	}

	data, _ := json.Marshal(backup)
	return os.WriteFile(filepath.Join(dir, backup.Name+".json"), data, 0o600)
}

// GET /1.0/instances/{name}/backups/{backup}
func instanceBackupGet(d *Daemon, r *http.Request) response.Response {
	name, backup := pathVar(r, "name"), pathVar(r, "backup")
	list, _ := d.listBackups(name)
	for _, b := range list {
		if b.Name == backup {
			return response.SyncResponse(true, b)
		}
	}

	return response.NotFound(fmt.Errorf("backup %q of %q not found", backup, name))
}

// POST /1.0/instances/{name}/backups/{backup}: rename (an operation, as LXD); the new
// name must be valid (400) and free (409).
func instanceBackupPost(d *Daemon, r *http.Request) response.Response {
	name, backup := pathVar(r, "name"), pathVar(r, "backup")
	req := api.InstanceBackupPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validBackupName(req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	if _, err := os.Stat(d.backupFile(name, backup)); validBackupName(backup) != nil || err != nil {
		return response.NotFound(fmt.Errorf("backup %q of %q not found", backup, name))
	}

	if _, err := os.Stat(d.backupFile(name, req.Name)); err == nil {
		return response.Conflict(fmt.Errorf("backup %q already exists", req.Name))
	}

	return d.task("Renaming backup", map[string][]string{"instances": {projects.InstanceURL(name)}, "backups": {backupURL(name, backup)}}, func(context.Context, *operations.Operation) error {
		return d.backups.Rename(name, backup, req.Name)
	})
}

// DELETE /1.0/instances/{name}/backups/{backup}
func instanceBackupDelete(d *Daemon, r *http.Request) response.Response {
	name, backup := pathVar(r, "name"), pathVar(r, "backup")
	if validBackupName(backup) != nil {
		return response.NotFound(fmt.Errorf("backup %q of %q not found", backup, name))
	}

	_, err := os.Stat(d.backupFile(name, backup))
	if err != nil {
		return response.NotFound(fmt.Errorf("backup %q of %q not found", backup, name))
	}

	return d.task("Deleting backup", map[string][]string{"instances": {projects.InstanceURL(name)}, "backups": {backupURL(name, backup)}}, func(ctx context.Context, op *operations.Operation) error {
		_ = os.Remove(filepath.Join(d.backups.Dir(), name, backup+".json"))
		return os.Remove(d.backupFile(name, backup))
	})
}

// GET /1.0/instances/{name}/backups/{backup}/export: the tarball.
func instanceBackupExport(d *Daemon, r *http.Request) response.Response {
	name, backup := pathVar(r, "name"), pathVar(r, "backup")
	if validBackupName(backup) != nil {
		return response.NotFound(fmt.Errorf("backup %q of %q not found", backup, name))
	}

	return response.FileResponse(d.backupFile(name, backup), backup+".tar.gz", nil)
}

// instancesPostBackup answers POST /1.0/instances with a raw backup tarball as the body
// (lxc import). The body is spooled to disk in the request; checking and unpacking run in
// the operation. X-LXD-name overrides the name in the backup, X-LXD-pool the pool its root
// disk names (lxc import --storage).
func instancesPostBackup(d *Daemon, r *http.Request) response.Response {
	err := os.MkdirAll(d.backups.Dir(), 0o700)
	if err != nil {
		return response.SmartError(err)
	}

	f, err := os.CreateTemp(d.backups.Dir(), ".upload-")
	if err != nil {
		return response.SmartError(err)
	}

	_, err = io.Copy(f, r.Body)
	closeErr := f.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		_ = os.Remove(f.Name())
		return response.SmartError(fmt.Errorf("receiving backup: %w", err))
	}

	name, pool := r.Header.Get("X-LXD-name"), r.Header.Get("X-LXD-pool")
	proj := projectOf(r)
	resources := map[string][]string{}
	if name != "" {
		resources = instanceResources(project.Key(proj, name))
	}

	return d.task("Restoring backup", resources, func(ctx context.Context, op *operations.Operation) error {
		defer os.Remove(f.Name())
		got, err := d.backups.Import(project.WithContext(ctx, proj), f.Name(), name, pool)
		if err == nil {
			_ = op.UpdateMetadata(map[string]any{"name": got})
		}

		return err
	})
}
