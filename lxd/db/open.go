package db

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// defaultBusyTimeout is how long SQLite itself waits for a lock before SQLITE_BUSY.
const defaultBusyTimeout = 5 * time.Second

// readConns bounds the read pool. WAL lets readers run beside the one writer.
const readConns = 4

// DB is the inventory: on a plain host a SQLite file with one writer connection and a
// small read-only pool; on a cluster member the global dqlite database (OpenCluster).
type DB struct {
	// write has exactly one connection: SQLite allows one writer at a time, so
	// in-process writers queue in database/sql instead of fighting over the lock.
	// In cluster mode write and read are the same handle and writeSem queues writers.
	write *sql.DB
	read  *sql.DB

	file string // berth.db's path; "" for the cluster database

	// cluster is set by OpenCluster: transient errors are retried only within
	// clusterRetryWindow and then reported as the cluster database being unavailable.
	cluster  bool
	writeSem chan struct{}
	// transient classifies errors of another driver (dqlite) as worth a retry.
	transient func(error) bool
}

// Open creates dir/database (0700), opens dir/database/berth.db and brings its
// schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) {
	return open(ctx, dir, defaultBusyTimeout)
}

func open(ctx context.Context, dir string, busy time.Duration) (*DB, error) {
	dbDir := filepath.Join(dir, "database")
	err := os.MkdirAll(dbDir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("creating database directory %q: %w", dbDir, err)
	}

	err = os.Chmod(dbDir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("restricting database directory %q: %w", dbDir, err)
	}

	path := filepath.Join(dbDir, "berth.db")
	if strings.ContainsAny(path, "?#") {
		// The driver splits its options off at '?'.
		return nil, fmt.Errorf("opening database %q: path must not contain '?' or '#'", path)
	}

	// The statement cache keeps the constant queries prepared per connection: it
	// halves the cost of a single-instance read.
	common := fmt.Sprintf("_foreign_keys=1&_busy_timeout=%d&_stmt_cache_size=64", busy.Milliseconds())

	write, err := sql.Open("sqlite3", path+"?"+common+"&_txlock=immediate&_journal_mode=WAL")
	if err != nil {
		return nil, fmt.Errorf("opening database %q: %w", path, err)
	}

	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)

	// Schema first, on the writer: it also switches the file to WAL before readers come.
	_, err = schema.Ensure(ctx, write, updates)
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("updating schema of %q: %w", path, err)
	}

	read, err := sql.Open("sqlite3", path+"?"+common+"&_query_only=1")
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("opening read pool for %q: %w", path, err)
	}

	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)

	err = read.PingContext(ctx)
	if err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, fmt.Errorf("opening read pool for %q: %w", path, err)
	}

	return &DB{write: write, read: read, file: path}, nil
}

// Close closes both pools. In cluster mode it closes nothing: the handle belongs to
// the gateway, which closes it with the node.
func (db *DB) Close() error {
	if db.cluster {
		return nil
	}

	errRead := db.read.Close()
	errWrite := db.write.Close()
	if errWrite != nil {
		return fmt.Errorf("closing database: %w", errWrite)
	}

	if errRead != nil {
		return fmt.Errorf("closing database read pool: %w", errRead)
	}

	return nil
}
