package db

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// newTestDB opens a fresh database in a temporary directory: a SQLite file, or a
// single-node dqlite while TestDqliteBackend runs the suite again.
func newTestDB(t testing.TB) *DB {
	t.Helper()

	if testBackend == backendDqlite {
		return newClusterTestDB(t)
	}

	db, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}

	t.Cleanup(func() { _ = db.Close() })

	return db
}

// write runs f in a write transaction and fails the test on error.
func write(t testing.TB, db *DB, f func(ctx context.Context, tx *Tx) error) {
	t.Helper()

	err := db.Transaction(context.Background(), f)
	if err != nil {
		t.Fatalf("write transaction: %v", err)
	}
}

// read runs f in a read transaction and fails the test on error.
func read(t testing.TB, db *DB, f func(ctx context.Context, tx *Tx) error) {
	t.Helper()

	err := db.ReadTransaction(context.Background(), f)
	if err != nil {
		t.Fatalf("read transaction: %v", err)
	}
}

// wantStatus fails unless err carries the HTTP status code.
func wantStatus(t *testing.T, err error, code int) {
	t.Helper()

	if !api.StatusErrorCheck(err, code) {
		t.Fatalf("error = %v (status %d), want status %d", err, api.StatusCodeOf(err), code)
	}
}

func TestOpenLayoutAndPragmas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = db.Close() })

	st, err := os.Stat(filepath.Join(dir, "database"))
	if err != nil {
		t.Fatal(err)
	}

	if st.Mode().Perm() != 0o700 {
		t.Fatalf("database directory mode = %v, want 0700", st.Mode().Perm())
	}

	_, err = os.Stat(filepath.Join(dir, "database", "berth.db"))
	if err != nil {
		t.Fatal(err)
	}

	var mode string
	err = db.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}

	var fk int
	err = db.write.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	if err != nil || fk != 1 {
		t.Fatalf("writer foreign_keys = %d, %v; want 1", fk, err)
	}

	err = db.read.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	if err != nil || fk != 1 {
		t.Fatalf("reader foreign_keys = %d, %v; want 1", fk, err)
	}

	var busy int
	err = db.write.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
	if err != nil || busy != 5000 {
		t.Fatalf("busy_timeout = %d, %v; want 5000", busy, err)
	}

	if db.write.Stats().MaxOpenConnections != 1 {
		t.Fatalf("writer pool allows %d connections, want 1", db.write.Stats().MaxOpenConnections)
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.UpdateNodeConfig(ctx, map[string]string{"core.https_address": ":8443"}, nil)
	})

	err = db.Close()
	if err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}

	t.Cleanup(func() { _ = db.Close() })

	read(t, db, func(ctx context.Context, tx *Tx) error {
		config, err := tx.GetNodeConfig(ctx)
		if err != nil {
			return err
		}

		if config["core.https_address"] != ":8443" {
			t.Errorf("node config after reopen = %v", config)
		}

		profiles, err := tx.GetProfiles(ctx)
		if err != nil {
			return err
		}

		if len(profiles) != 1 {
			t.Errorf("profiles after reopen = %d, want only the default one", len(profiles))
		}

		return nil
	})
}

func TestReadTransactionCannotWrite(t *testing.T) {
	db := newTestDB(t)

	err := db.ReadTransaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.UpdateNodeConfig(ctx, map[string]string{"a": "b"}, nil)
	})
	if err == nil {
		t.Fatal("writing in a read transaction succeeded")
	}
}

func TestTimesRoundTrip(t *testing.T) {
	db := newTestDB(t)
	now := time.Now()

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, Instance{Name: "c1", Type: "container", CreatedAt: now})
		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		inst, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		if !inst.CreatedAt.Equal(now) || inst.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt = %v, want %v in UTC", inst.CreatedAt, now)
		}

		if inst.LastUsedAt != (time.Time{}) {
			t.Errorf("zero LastUsedAt read back as %v", inst.LastUsedAt)
		}

		return nil
	})
}

func TestNotFoundKinds(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	err := db.ReadTransaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.GetInstance(ctx, "nope")
		return err
	})
	wantStatus(t, err, http.StatusNotFound)

	if err.Error() != `instance "nope" not found` {
		t.Fatalf("message = %q", err.Error())
	}
}
