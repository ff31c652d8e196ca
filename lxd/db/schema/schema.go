// Package schema applies versioned updates to a SQL database.
//
// The engine is generic: it knows nothing about Berth's tables. Its caller hands it
// an ordered list of updates; update i (0-based) moves the schema from version i to
// version i+1. The applied versions are recorded in a "schema" table.
package schema

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Update moves the schema forward by one version.
//
// Updates are append-only: once released, an update is never edited or removed,
// only followed by a new one. Each must be self-contained: plain SQL on the given
// transaction, never daemon code or the caller's typed queries, because those follow
// the newest schema while the update runs against an older one.
type Update func(ctx context.Context, tx *sql.Tx) error

const createSchemaTable = `CREATE TABLE IF NOT EXISTS schema (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (version)
)`

const selectVersion = `SELECT COALESCE(MAX(version), 0) FROM schema`

const insertVersion = `INSERT INTO schema (version, updated_at) VALUES (?, ?)`

// Ensure applies every update missing from db, each in its own transaction, and
// returns how many it applied. A database newer than the list of updates is an error:
// this binary would not understand its tables.
func Ensure(ctx context.Context, db *sql.DB, updates []Update) (int, error) {
	_, err := db.ExecContext(ctx, createSchemaTable)
	if err != nil {
		return 0, fmt.Errorf("creating schema table: %w", err)
	}

	applied := 0
	for i, update := range updates {
		version := i + 1

		done, err := apply(ctx, db, version, update)
		if err != nil {
			return applied, err
		}

		if done {
			applied++
		}
	}

	current, err := Version(ctx, db)
	if err != nil {
		return applied, err
	}

	if current > len(updates) {
		return applied, fmt.Errorf("database schema version %d is newer than this binary supports (%d)", current, len(updates))
	}

	return applied, nil
}

// apply runs one update unless the database is already at or past its version.
// The version is checked inside the transaction so two openers cannot both apply it.
func apply(ctx context.Context, db *sql.DB, version int, update Update) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("beginning schema update %d: %w", version, err)
	}

	defer func() { _ = tx.Rollback() }()

	var current int
	err = tx.QueryRowContext(ctx, selectVersion).Scan(&current)
	if err != nil {
		return false, fmt.Errorf("reading schema version: %w", err)
	}

	if current >= version {
		return false, nil
	}

	if current != version-1 {
		return false, fmt.Errorf("applying schema update %d: database is at version %d", version, current)
	}

	err = update(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("applying schema update %d: %w", version, err)
	}

	_, err = tx.ExecContext(ctx, insertVersion, version, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return false, fmt.Errorf("recording schema version %d: %w", version, err)
	}

	err = tx.Commit()
	if err != nil {
		return false, fmt.Errorf("committing schema update %d: %w", version, err)
	}

	return true, nil
}

// Version returns the highest applied version, 0 for a database without updates.
func Version(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, selectVersion).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}

	return v, nil
}

const selectMaster = `SELECT sql FROM sqlite_master
WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name`

// Dump returns the schema of a SQLite database as SQL statements, tables first,
// in a stable order. Row data is not included.
func Dump(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, selectMaster)
	if err != nil {
		return "", fmt.Errorf("reading sqlite_master: %w", err)
	}

	defer func() { _ = rows.Close() }()

	var b strings.Builder
	for rows.Next() {
		var stmt string
		err := rows.Scan(&stmt)
		if err != nil {
			return "", fmt.Errorf("scanning sqlite_master: %w", err)
		}

		b.WriteString(stmt)
		b.WriteString(";\n")
	}

	err = rows.Err()
	if err != nil {
		return "", fmt.Errorf("reading sqlite_master: %w", err)
	}

	return b.String(), nil
}

var spaces = regexp.MustCompile(`\s+`)

// Normalize collapses whitespace so two dumps compare equal regardless of layout.
func Normalize(dump string) string {
	s := spaces.ReplaceAllString(dump, " ")
	s = strings.ReplaceAll(s, "( ", "(")
	s = strings.ReplaceAll(s, " )", ")")

	return strings.TrimSpace(s)
}
