package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV7 adds custom storage volumes and their snapshots. A volume belongs to a pool
// (a pool with volumes cannot be deleted: RESTRICT); its snapshots go with it. Config is
// JSON, read and written whole.
func updateFromV7(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE storage_volumes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    storage_pool_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL DEFAULT 'filesystem',
    config TEXT NOT NULL DEFAULT '{}',
    creation_date TEXT,
    FOREIGN KEY (storage_pool_id) REFERENCES storage_pools (id) ON DELETE RESTRICT,
    UNIQUE (storage_pool_id, name)
)`, `
CREATE TABLE storage_volumes_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    storage_volume_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    creation_date TEXT,
    expiry_date TEXT,
    FOREIGN KEY (storage_volume_id) REFERENCES storage_volumes (id) ON DELETE CASCADE,
    UNIQUE (storage_volume_id, name)
)`}

	for _, s := range stmts {
		_, err := tx.ExecContext(ctx, s)
		if err != nil {
			return fmt.Errorf("creating storage volume tables: %w", err)
		}
	}

	return nil
}
