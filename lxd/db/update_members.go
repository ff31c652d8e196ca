package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV11 adds cluster membership (issue 16). Like LXD, there is always a member
// row: id 1, named "none" with no address, is this host until clustering is enabled
// (which renames it). Every instance belongs to a member (member_id, default 1), so a
// single host needs nothing new. cluster_tokens holds pending join tokens (the secret
// as SHA-256 hex only), one per name.
//
// member_id has no REFERENCES clause: with foreign keys on, SQLite refuses to add a
// REFERENCES column with a non-NULL default to a table that has rows, which is every
// upgraded host. Members are never deleted while instances name them (DELETE of a
// member refuses, or with force deletes its instances first).
func updateFromV11(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE members (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    schema_version INTEGER NOT NULL DEFAULT 0,
    api_extensions INTEGER NOT NULL DEFAULT 0,
    arch TEXT NOT NULL DEFAULT '',
    failure_domain TEXT NOT NULL DEFAULT 'default',
    evacuated INTEGER NOT NULL DEFAULT 0,
    heartbeat TEXT,
    UNIQUE (name)
)`,
		`INSERT INTO members (id, name) VALUES (1, 'none')`,
		`ALTER TABLE instances ADD COLUMN member_id INTEGER NOT NULL DEFAULT 1`,
		`CREATE INDEX instances_member_id ON instances (member_id)`, `
CREATE TABLE cluster_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    UNIQUE (name)
)`,
	}

	for _, s := range stmts {
		_, err := tx.ExecContext(ctx, s)
		if err != nil {
			return fmt.Errorf("adding cluster members: %w", err)
		}
	}

	return nil
}
