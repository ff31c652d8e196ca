package pools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// Create validates a request, makes the pool (its directory, or a btrfs loop file mounted
// on it), loads its driver and records it. On failure nothing stays.
func (s *Service) Create(ctx context.Context, req api.StoragePoolsPost) error {
	err := ValidateName(req.Name)
	if err != nil {
		return err
	}

	if req.Driver == "" {
		return api.StatusErrorf(http.StatusBadRequest, "no storage driver given (have %s)", strings.Join(Drivers, ", "))
	}

	if req.Config == nil {
		req.Config = map[string]string{}
	}

	err = ValidateConfig(req.Driver, req.Config)
	if err != nil {
		return err
	}

	if req.Driver == "btrfs" && req.Config["source"] != "" && req.Config["size"] != "" {
		return api.StatusErrorf(http.StatusBadRequest, `config key "size" applies only to a loop-file pool (no "source")`)
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStoragePool(ctx, req.Name)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "storage pool %q already exists", req.Name)
		}

		if api.StatusErrorCheck(err, http.StatusNotFound) {
			return nil
		}

		return err
	})
	if err != nil {
		return err
	}

	row := db.StoragePool{Name: req.Name, Driver: req.Driver, Description: req.Description, Config: maps.Clone(req.Config)}
	p, err := s.plan(&row)
	if err != nil {
		return err
	}

	err = s.writeMarker(row.Name, p)
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() {
		s.unload(row.Name)
		derr := s.destroy(p)
		if derr != nil {
			s.log.Warn("removing pool after failed create; retried at next start", "pool", row.Name, "err", derr)
			return
		}

		s.dropMarker(row.Name)
	})

	err = s.make(ctx, &row, p)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateStoragePool(ctx, row)
		return err
	})
	if err != nil {
		return err
	}

	r.Success()
	s.dropMarker(row.Name)
	s.log.Info("created storage pool", "pool", row.Name, "driver", row.Driver, "dir", p.Dir)
	s.emit("storage-pool-created", urlOf(row.Name), nil)

	return nil
}

// plan decides where a new pool goes and fills the config keys LXD reports (source, size),
// checking the admin's source. It changes nothing on disk.
func (s *Service) plan(row *db.StoragePool) (pending, error) {
	src := row.Config["source"]
	if src == "" {
		dir := s.ownDir(row.Name)
		_, err := os.Lstat(dir)
		if err == nil {
			return pending{}, api.StatusErrorf(http.StatusConflict, "pool directory %q exists already", dir)
		}

		if row.Driver != "btrfs" {
			row.Config["source"] = dir
			return pending{Dir: dir, OwnDir: true}, nil
		}

		size, err := loopSize(row.Config["size"])
		if err != nil {
			return pending{}, api.StatusErrorf(http.StatusBadRequest, "config key %q: %w", "size", err)
		}

		if row.Config["size"] == "" {
			row.Config["size"] = fmt.Sprintf("%dGiB", size>>30)
		}

		row.Config["source"] = s.loopFile(row.Name)
		return pending{Dir: dir, OwnDir: true, LoopFile: s.loopFile(row.Name)}, nil
	}

	fi, err := os.Lstat(src)
	if err != nil || !fi.IsDir() {
		return pending{}, api.StatusErrorf(http.StatusBadRequest, "source %q is not an existing directory", src)
	}

	if strings.HasPrefix(src+"/", s.stateDir+"/") {
		return pending{}, api.StatusErrorf(http.StatusBadRequest, "source %q is inside the daemon's directory", src)
	}

	if row.Driver == "btrfs" {
		ok, err := storage.IsBtrfs(src)
		if err != nil {
			return pending{}, err
		}

		if !ok {
			return pending{}, api.StatusErrorf(http.StatusBadRequest, "source %q is not on a btrfs filesystem", src)
		}
	}

	empty, err := isEmptyDir(src)
	if err != nil {
		return pending{}, err
	}

	if !empty {
		return pending{}, api.StatusErrorf(http.StatusBadRequest, "source %q is not empty", src)
	}

	return pending{Dir: src}, nil
}

// make creates a planned pool on disk and loads its driver.
func (s *Service) make(ctx context.Context, row *db.StoragePool, p pending) error {
	if p.OwnDir {
		err := os.Mkdir(p.Dir, 0o711)
		if err != nil {
			return fmt.Errorf("creating pool directory: %w", err)
		}
	}

	if row.Driver == "overlay" {
		err := storage.ProbeOverlay(p.Dir)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "the overlay driver cannot work at %q: %w", p.Dir, err)
		}
	}

	if p.LoopFile != "" {
		size, err := loopSize(row.Config["size"])
		if err != nil {
			return err
		}

		err = storage.CreateBtrfsFile(ctx, p.LoopFile, size)
		if err != nil {
			return err
		}
	}

	return s.load(row)
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("reading %q: %w", dir, err)
	}

	defer func() { _ = f.Close() }()

	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}

	return false, err
}

func (s *Service) unload(name string) {
	s.lmu.Lock()
	delete(s.loaded, name)
	s.lmu.Unlock()
}

// Update applies a PUT (patch false: config replaced) or a PATCH (config merged, an empty
// description kept). ifMatch is the request's If-Match header ("" skips the check).
func (s *Service) Update(ctx context.Context, name, ifMatch string, req api.StoragePoolPut, patch bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	cur, err := s.Get(ctx, name)
	if err != nil {
		return err
	}

	err = etag.Match(ifMatch, ETag(cur))
	if err != nil {
		return err
	}

	config := map[string]string{}
	if patch {
		maps.Copy(config, cur.Config)
	}

	maps.Copy(config, req.Config)
	err = ValidateUpdate(cur.Driver, cur.Config, config)
	if err != nil {
		return err
	}

	if req.Description == "" && patch {
		req.Description = cur.Description
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateStoragePool(ctx, name, db.StoragePool{Description: req.Description, Config: config})
	})
	if err != nil {
		return err
	}

	s.emit("storage-pool-updated", urlOf(name), nil)
	return nil
}

// Delete removes an unused pool: its record, then its directory, mount and loop file. One
// in use is a 400, as LXD; the default pool, which holds the daemon's images and
// instances, cannot be deleted.
func (s *Service) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	cur, err := s.Get(ctx, name)
	if err != nil {
		return err
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "storage pool %q is currently in use by %s", name, strings.Join(cur.UsedBy, ", "))
	}

	if name == DefaultName {
		return api.StatusErrorf(http.StatusBadRequest, "storage pool %q holds the daemon's images and instances and cannot be deleted", name)
	}

	row := &db.StoragePool{Name: cur.Name, Driver: cur.Driver, Config: cur.Config}
	p := pending{Dir: s.dirOf(row), OwnDir: s.dirOf(row) == s.ownDir(name)}
	if s.isLoop(row) {
		p.LoopFile = s.loopFile(name)
	}

	err = s.writeMarker(name, p)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteStoragePool(ctx, name)
	})
	if err != nil {
		s.dropMarker(name)
		return err
	}

	s.unload(name)
	s.emit("storage-pool-deleted", urlOf(name), nil)

	err = s.destroy(p)
	if err != nil {
		// The marker stays: the next start retries.
		s.log.Warn("removing a deleted pool's files; retried at next start", "pool", name, "err", err)
		return nil
	}

	s.dropMarker(name)
	s.log.Info("deleted storage pool", "pool", name)

	return nil
}
