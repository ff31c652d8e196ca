// Package pools owns storage pool records: it keeps the database rows and the loaded
// storage drivers (lxd/storage) in step, makes and removes the pools' directories and
// filesystems (btrfs loop files), reports users and free space, and creates the default
// pool on first start. Handlers decode a request, call one method and respond.
//
// Crash safety: before a create or delete touches the disk it writes a marker
// (storage-pools/.pending-<name>) naming what it makes; the marker goes once the database
// says how it ended. At start, a marker whose pool has no row is undone (unmounted, its
// loop file and directory removed), one whose pool has a row is dropped.
package pools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// DefaultName is the pool made on first start, where instances and images live.
const DefaultName = "default"

// Emit sends a lifecycle event ("storage-pool-created", its URL, extra context).
type Emit func(action, url string, ctx map[string]any)

// Service manages storage pools.
type Service struct {
	stateDir string
	db       *db.DB
	log      *slog.Logger
	emit     Emit

	// mu serialises changes (create, update, delete) against each other.
	mu sync.Mutex

	lmu    sync.RWMutex
	loaded map[string]storage.Driver // pools whose driver loaded; others are Unavailable

	clustered bool // daemon-made sources are each member's own (member.go)
}

// pending is what a create or delete in progress made, for undoing it after a crash.
type pending struct {
	Dir      string `json:"dir"`       // the pool directory (or mount point)
	OwnDir   bool   `json:"own_dir"`   // the daemon made Dir (else the admin's source)
	LoopFile string `json:"loop_file"` // a btrfs loop file the daemon made
}

// Start removes what interrupted creates and deletes left, loads every pool (mounting
// loop-backed btrfs pools), and on first start creates the default pool with the best
// driver for this host.
func Start(ctx context.Context, stateDir string, d *db.DB, log *slog.Logger, emit Emit, opts ...Option) (*Service, error) {
	s := &Service{stateDir: stateDir, db: d, log: log, emit: emit, loaded: map[string]storage.Driver{}}
	for _, o := range opts {
		o(s)
	}

	for _, dir := range []string{s.poolsDir(), s.disksDir()} {
		err := os.MkdirAll(dir, 0o711)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}

	var rows []db.StoragePool
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetStoragePools(ctx)
		if err != nil {
			return err
		}

		for _, r := range rows {
			if r.Name == DefaultName {
				return nil
			}
		}

		dir := s.ownDir(DefaultName)
		err = os.MkdirAll(dir, 0o711)
		if err != nil {
			return err
		}

		row := db.StoragePool{Name: DefaultName, Driver: storage.DefaultDriver(dir), Config: map[string]string{"source": dir}}
		_, err = tx.CreateStoragePool(ctx, row)
		rows = append(rows, row)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading storage pools: %w", err)
	}

	s.undoPending(rows)

	for i := range rows {
		err := s.load(&rows[i])
		if err != nil && rows[i].Name == DefaultName {
			return nil, fmt.Errorf("loading storage driver %q: %w", rows[i].Driver, err)
		}

		if err != nil {
			log.Error("loading storage pool; it is unavailable", "pool", rows[i].Name, "err", err)
		}
	}

	return s, nil
}

// Default is the default pool's driver: instances and images live there.
func (s *Service) Default() storage.Driver {
	s.lmu.RLock()
	defer s.lmu.RUnlock()
	return s.loaded[DefaultName]
}

// Driver returns the driver of pool name, where instances on it live: a 404 when there
// is no such pool, a 503 when it exists but did not load.
func (s *Service) Driver(name string) (storage.Driver, error) {
	s.lmu.RLock()
	drv := s.loaded[name]
	s.lmu.RUnlock()
	if drv != nil {
		return drv, nil
	}

	err := s.db.ReadTransaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStoragePool(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	return nil, api.StatusErrorf(http.StatusServiceUnavailable, "storage pool %q is unavailable", name)
}

// Drivers returns the drivers of every loaded pool by name.
func (s *Service) Drivers() map[string]storage.Driver {
	s.lmu.RLock()
	defer s.lmu.RUnlock()
	return maps.Clone(s.loaded)
}

func (s *Service) poolsDir() string          { return filepath.Join(s.stateDir, "storage-pools") }
func (s *Service) disksDir() string          { return filepath.Join(s.stateDir, "disks") }
func (s *Service) ownDir(name string) string { return filepath.Join(s.poolsDir(), name) }
func (s *Service) loopFile(name string) string {
	return filepath.Join(s.disksDir(), name+".img")
}

func (s *Service) markerPath(name string) string {
	return filepath.Join(s.poolsDir(), ".pending-"+name)
}

func urlOf(name string) string { return "/1.0/storage-pools/" + url.PathEscape(name) }

// isLoop reports whether a btrfs pool's source is its loop file (LXD records it so).
func (s *Service) isLoop(row *db.StoragePool) bool {
	src := row.Config["source"]
	return row.Driver == "btrfs" && (src == s.loopFile(row.Name) || (s.clustered && loopByADaemon(src, row.Name)))
}

// dirOf is where a pool's driver works: the admin's source directory, or the daemon's own
// directory (the mount point of a loop-backed btrfs pool).
func (s *Service) dirOf(row *db.StoragePool) string {
	src := row.Config["source"]
	if src == "" || s.isLoop(row) || (s.clustered && madeByADaemon(src, row.Name)) {
		return s.ownDir(row.Name)
	}

	return src
}

// load mounts a loop-backed pool and loads the pool's driver.
func (s *Service) load(row *db.StoragePool) error {
	err := s.ensureMemberLocal(row)
	if err != nil {
		return err
	}

	dir := s.dirOf(row)
	if s.isLoop(row) {
		err := storage.MountBtrfsFile(s.loopFile(row.Name), dir, row.Config["btrfs.mount_options"])
		if err != nil {
			return err
		}
	}

	name := row.Driver
	if name == "btrfs" {
		var err error
		name, err = storage.BtrfsInstanceDriver(dir)
		if err != nil {
			return err
		}
	}

	drv, err := storage.Load(name, dir, s.log)
	if err != nil {
		return err
	}

	s.lmu.Lock()
	s.loaded[row.Name] = drv
	s.lmu.Unlock()

	return nil
}

// writeMarker records an operation about to change the disk; it is durable before the
// change starts.
func (s *Service) writeMarker(name string, p pending) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}

	// Whole or absent: a torn marker could not be parsed, and what it records would stay.
	err = atomicfile.WriteDurable(s.markerPath(name), data, 0o600)
	if err != nil {
		return fmt.Errorf("recording pool operation: %w", err)
	}

	return nil
}

func (s *Service) dropMarker(name string) {
	err := os.Remove(s.markerPath(name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("removing pool operation marker", "pool", name, "err", err)
	}
}

// undoPending finishes the creates and deletes a crash interrupted: a pool without a row
// has what its marker names removed.
func (s *Service) undoPending(rows []db.StoragePool) {
	have := map[string]bool{}
	for _, r := range rows {
		have[r.Name] = true
	}

	markers, _ := filepath.Glob(filepath.Join(s.poolsDir(), ".pending-*"))
	for _, m := range markers {
		name := strings.TrimPrefix(filepath.Base(m), ".pending-")
		if have[name] {
			s.dropMarker(name)
			continue
		}

		var p pending
		data, err := os.ReadFile(m)
		if err == nil {
			err = json.Unmarshal(data, &p)
		}

		if err == nil {
			err = s.destroy(p)
		}

		if err != nil {
			s.log.Warn("undoing an interrupted pool operation", "pool", name, "err", err)
			continue
		}

		s.log.Info("removed what an interrupted pool operation left", "pool", name)
		s.dropMarker(name)
	}
}

// destroy removes what a pool made: its mount, layout, directory and loop file.
func (s *Service) destroy(p pending) error {
	if p.Dir == "" {
		return nil
	}

	if p.LoopFile != "" {
		err := storage.UnmountPool(p.Dir)
		if err != nil {
			return err
		}
	}

	err := storage.RemovePoolLayout(p.Dir, p.OwnDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	if p.LoopFile != "" {
		err = os.Remove(p.LoopFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}

	return nil
}
