package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// Leaving the cluster (issue 16): a member removed through another member
// (DELETE /1.0/cluster/members/{name}) is told so (PUT /1.0/cluster, enabled false,
// from that member) and resets itself to a standalone server, as LXD does: it forgets
// the cluster database (its dqlite directory and local.db), stops serving and
// presenting the cluster certificate (its key is deleted; the member's own server
// certificate is served again) and restarts with a fresh, empty inventory. Only its
// own listener address is kept, so the server stays reachable where it was.
//
// The reset runs at the next start (Open), after the dqlite node has stopped: Leave
// only records it (a marker file, written durably) and the daemon re-execs. A start
// that finds the marker finishes the reset before anything else, so an interrupted
// reset is completed, never half done.

// leftFile marks a member that was removed from its cluster (in database/).
const leftFile = "cluster.left"

// Leave records that this member was removed from the cluster: the caller re-execs
// the daemon, whose next start resets it to a standalone server.
func (s *Service) Leave(ctx context.Context) error {
	if !s.Enabled() {
		return errors.New("not clustered")
	}

	path := filepath.Join(s.dir, "database", leftFile)
	return atomicfile.WriteDurable(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

// finishLeave resets a member that left (the marker exists) and returns the member's
// own configuration to keep (core.https_address, core.metrics_address); nil when the
// host did not leave a cluster.
func finishLeave(ctx context.Context, dir string) (map[string]string, error) {
	marker := filepath.Join(dir, "database", leftFile)
	_, err := os.Lstat(marker)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}

	if err != nil {
		return nil, err
	}

	keep := map[string]string{}
	conn, err := db.OpenLocal(ctx, dir, false)
	if err != nil {
		return nil, err
	}

	if conn != nil {
		var cfg map[string]string
		cfg, err = readConfig(ctx, conn)
		_ = conn.Close()
		if err != nil {
			return nil, err
		}

		for _, k := range []string{"core.https_address", "core.metrics_address"} {
			if cfg[k] != "" {
				keep[k] = cfg[k]
			}
		}
	}

	// local.db first: without it the member starts standalone, whatever else is left.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err = os.Remove(filepath.Join(dir, "database", db.LocalFile+suffix))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("leaving the cluster: %w", err)
		}
	}

	// The dqlite directory and the cluster certificate and key.
	err = removeHalfMade(dir)
	if err != nil {
		return nil, fmt.Errorf("leaving the cluster: %w", err)
	}

	// The backup of the inventory from before clustering stays, under a name of its
	// own, so a later enable can write its own.
	backup := filepath.Join(dir, "database", BackupFile)
	_, err = os.Lstat(backup)
	if err == nil {
		err = os.Rename(backup, backup+"."+time.Now().UTC().Format("20060102T150405"))
		if err != nil {
			return nil, fmt.Errorf("leaving the cluster: %w", err)
		}
	}

	err = os.Remove(marker)
	if err != nil {
		return nil, fmt.Errorf("leaving the cluster: %w", err)
	}

	return keep, nil
}

// readConfig reads local.db's config table (none yet: empty).
func readConfig(ctx context.Context, conn *sql.DB) (map[string]string, error) {
	_, err := conn.ExecContext(ctx, localConfigSchema)
	if err != nil {
		return nil, fmt.Errorf("reading local.db config: %w", err)
	}

	s := &Service{localDB: conn, enabled: true}
	return s.LocalConfig(ctx)
}

// Left is the member's own configuration kept from the cluster it left at this start
// (the daemon writes it into its new inventory); nil when it did not just leave one.
func (s *Service) Left() map[string]string {
	if s == nil {
		return nil
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.left
}
