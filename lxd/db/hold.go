package db

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// HoldWriter takes the single writer connection with an open write transaction (BEGIN
// IMMEDIATE: the file's write lock too) and keeps it until release, which rolls back.
// Every other writer of this process queues behind it, and other processes get
// SQLITE_BUSY: `cluster enable` holds it from the copy into dqlite to the re-exec, so
// nothing is written to the file after the copy. Reads still see the last commit.
func (db *DB) HoldWriter(ctx context.Context) (release func(), err error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("taking the database writer: %w", err)
	}

	// A write makes the lock certain even if the driver began a deferred transaction.
	_, err = tx.ExecContext(ctx, `UPDATE members SET id = id WHERE id = 1`)
	if err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("taking the database write lock: %w", err)
	}

	return func() { _ = tx.Rollback() }, nil
}

// SchemaVersion is the schema version this binary brings a database to: each member
// records it, and a joiner must have the cluster's.
func SchemaVersion() int { return len(updates) }

// backupWritten, when set (tests), sees the temporary copy right after VACUUM INTO.
var backupWritten func(tmp string)

// BackupTo writes a consistent copy of the file database (the last commit, WAL
// included) to path, mode 0400, through a connection of its own: VACUUM INTO reads a
// snapshot beside a held writer. Only for the file database.
func (db *DB) BackupTo(ctx context.Context, path string) error {
	if db.file == "" {
		return fmt.Errorf("backing up: not a file database")
	}

	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	// The copy is root's only from its first byte: VACUUM INTO would create it with
	// the umask's mode (0644), readable by anyone until the chmod below (issue 16
	// review). SQLite writes into an existing file when it is empty.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err == nil {
		err = f.Chmod(0o600)
		_ = f.Close()
	}

	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backing up %q: %w", db.file, err)
	}

	conn, err := sql.Open("sqlite3", db.file+"?_busy_timeout=5000")
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backing up %q: %w", db.file, err)
	}

	defer func() { _ = conn.Close() }()
	_, err = conn.ExecContext(ctx, `VACUUM INTO ?`, tmp)
	if backupWritten != nil {
		backupWritten(tmp)
	}

	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backing up %q: %w", db.file, err)
	}

	f, err = os.Open(tmp)
	if err == nil {
		err = f.Sync()
		_ = f.Close()
	}

	if err == nil {
		err = os.Chmod(tmp, 0o400)
	}

	if err == nil {
		err = os.Rename(tmp, path)
	}

	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backing up %q: %w", db.file, err)
	}

	return nil
}

// RemoveFile deletes the file database (with its WAL and shared-memory files) once it
// is closed or its process is about to be replaced: a clustered member must never start
// on it again. The backup stays.
func RemoveFile(dir string) error {
	base := filepath.Join(dir, "database", "berth.db")
	for _, p := range []string{base, base + "-wal", base + "-shm"} {
		err := os.Remove(p)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
	}

	return nil
}

// FileExists reports whether dir has a file database.
func FileExists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "database", "berth.db"))
	return err == nil
}
