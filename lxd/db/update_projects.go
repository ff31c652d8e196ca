package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV8 adds projects. The default project (id 1) owns every existing instance,
// profile, image and alias. An instance's name column holds its key (its name in the
// default project, "<project>_<name>" elsewhere; shared/project), so UNIQUE (name) is
// uniqueness per project and the host-side names follow the key. Profiles, images and
// aliases carry their project for when a project has features.profiles/images; until
// then they all belong to the default project.
func updateFromV8(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
)`, `
CREATE TABLE projects_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, key)
)`,
		`INSERT INTO projects (id, name, description) VALUES (1, 'default', 'Default Berth project')`,
		`INSERT INTO projects_config (project_id, key, value) VALUES
    (1, 'features.images', 'true'), (1, 'features.profiles', 'true'),
    (1, 'features.storage.volumes', 'true'), (1, 'features.networks', 'true')`,
		`ALTER TABLE instances ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1`,
		`ALTER TABLE profiles ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1`,
		`ALTER TABLE images ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1`,
		`ALTER TABLE images_aliases ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1`,
		`CREATE INDEX instances_project_id_idx ON instances (project_id)`,
	}

	for _, stmt := range stmts {
		_, err := tx.ExecContext(ctx, stmt)
		if err != nil {
			return fmt.Errorf("adding projects: %w", err)
		}
	}

	return nil
}
