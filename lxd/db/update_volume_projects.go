package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV9 gives custom storage volumes a project. Every existing volume belongs to
// the default project (id 1) and keeps its name, which is its key there (shared/project
// VolumeKey), so nothing moves on disk. A volume of another project is named by its key,
// "<name>@<project>": UNIQUE (storage_pool_id, name) is then uniqueness per pool and
// project, and project_id says whose it is (counted when a project is changed, renamed or
// deleted).
func updateFromV9(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{
		`ALTER TABLE storage_volumes ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1`,
		`CREATE INDEX storage_volumes_project_id_idx ON storage_volumes (project_id)`,
	}

	for _, stmt := range stmts {
		_, err := tx.ExecContext(ctx, stmt)
		if err != nil {
			return fmt.Errorf("adding projects to storage volumes: %w", err)
		}
	}

	return nil
}
