package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	// Test-only: the engine itself stays driver-agnostic.
	_ "github.com/mattn/go-sqlite3"

	"github.com/berth-dev/berth/lxd/db/schema"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()

	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "test.db")+"?_foreign_keys=1")
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}

	t.Cleanup(func() { _ = db.Close() })

	return db
}

func execUpdate(stmt string) schema.Update {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	}
}

func TestEnsureAppliesMissingUpdatesOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	updates := []schema.Update{
		execUpdate("CREATE TABLE a (id INTEGER PRIMARY KEY)"),
		execUpdate("CREATE TABLE b (id INTEGER PRIMARY KEY)"),
	}

	n, err := schema.Ensure(ctx, db, updates[:1])
	if err != nil || n != 1 {
		t.Fatalf("first Ensure = %d, %v; want 1, nil", n, err)
	}

	n, err = schema.Ensure(ctx, db, updates)
	if err != nil || n != 1 {
		t.Fatalf("second Ensure = %d, %v; want 1, nil", n, err)
	}

	n, err = schema.Ensure(ctx, db, updates)
	if err != nil || n != 0 {
		t.Fatalf("third Ensure = %d, %v; want 0, nil", n, err)
	}

	v, err := schema.Version(ctx, db)
	if err != nil || v != 2 {
		t.Fatalf("Version = %d, %v; want 2, nil", v, err)
	}
}

func TestEnsureRollsBackFailedUpdate(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	boom := errors.New("boom")
	updates := []schema.Update{
		execUpdate("CREATE TABLE a (id INTEGER PRIMARY KEY)"),
		func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "CREATE TABLE b (id INTEGER PRIMARY KEY)")
			if err != nil {
				return err
			}

			return boom
		},
	}

	n, err := schema.Ensure(ctx, db, updates)
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Ensure = %d, %v; want 1, boom", n, err)
	}

	v, err := schema.Version(ctx, db)
	if err != nil || v != 1 {
		t.Fatalf("Version = %d, %v; want 1, nil", v, err)
	}

	dump, err := schema.Dump(ctx, db)
	if err != nil {
		t.Fatal(err)
	}

	if strings.Contains(dump, "CREATE TABLE b") {
		t.Fatalf("failed update left table b behind:\n%s", dump)
	}
}

func TestEnsureRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	updates := []schema.Update{
		execUpdate("CREATE TABLE a (id INTEGER PRIMARY KEY)"),
		execUpdate("CREATE TABLE b (id INTEGER PRIMARY KEY)"),
	}

	_, err := schema.Ensure(ctx, db, updates)
	if err != nil {
		t.Fatal(err)
	}

	_, err = schema.Ensure(ctx, db, updates[:1])
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Ensure with fewer updates = %v; want a newer-schema error", err)
	}
}

func TestDumpIsOrderedAndNormalizable(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	updates := []schema.Update{
		execUpdate("CREATE TABLE zz (id INTEGER PRIMARY KEY,\n\t name TEXT)"),
		execUpdate("CREATE INDEX aa ON zz (name)"),
	}

	_, err := schema.Ensure(ctx, db, updates)
	if err != nil {
		t.Fatal(err)
	}

	dump, err := schema.Dump(ctx, db)
	if err != nil {
		t.Fatal(err)
	}

	if strings.Index(dump, "CREATE TABLE zz") > strings.Index(dump, "CREATE INDEX aa") {
		t.Fatalf("tables must come before indexes:\n%s", dump)
	}

	got := schema.Normalize(dump)
	if !strings.Contains(got, "CREATE TABLE zz (id INTEGER PRIMARY KEY, name TEXT);") {
		t.Fatalf("normalized dump lacks table zz: %s", got)
	}
}
