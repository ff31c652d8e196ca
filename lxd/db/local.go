package db

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LocalFile is a clustered member's own database, beside the global one in dqlite.
const LocalFile = "local.db"

// OpenLocal opens dir/database/local.db, a plain SQLite file for member-local state
// (lxd/cluster owns its table). create false opens it only if it exists: a never
// clustered host has none, and (nil, nil) says so.
func OpenLocal(ctx context.Context, dir string, create bool) (*sql.DB, error) {
	dbDir := filepath.Join(dir, "database")
	path := filepath.Join(dbDir, LocalFile)
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("opening database %q: path must not contain '?' or '#'", path)
	}

	_, err := os.Lstat(path)
	if os.IsNotExist(err) && !create {
		return nil, nil
	}

	err = os.MkdirAll(dbDir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("creating database directory %q: %w", dbDir, err)
	}

	// The file (and so its WAL and shared-memory files, which SQLite gives the file's
	// mode) is root's only, whatever the daemon's umask.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	err = f.Chmod(0o600)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	conn, err := sql.Open("sqlite3", path+"?_foreign_keys=1&_busy_timeout=5000&_txlock=immediate&_journal_mode=WAL")
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	conn.SetMaxOpenConns(1)
	err = conn.PingContext(ctx)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	return conn, nil
}
