package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV10 makes images and aliases per project (features.images): the same
// fingerprint may be a row in several projects, and an alias name is unique within its
// project only. SQLite cannot change a UNIQUE constraint in place, so the three image
// tables are rebuilt under new names, filled with the old rows (ids kept: every existing
// row stays the default project's, project_id 1), the old ones dropped children first (a
// dropped images table cascades to nothing then) and the new ones renamed into place
// (the rename rewrites the children's REFERENCES).
func updateFromV10(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE images_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id INTEGER NOT NULL DEFAULT 1,
    fingerprint TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    type TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    auto_update INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    creation_date TEXT,
    expiry_date TEXT,
    upload_date TEXT,
    last_use_date TEXT,
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, fingerprint)
)`, `
INSERT INTO images_new (id, project_id, fingerprint, filename, size, architecture, type, public,
    auto_update, cached, creation_date, expiry_date, upload_date, last_use_date)
SELECT id, project_id, fingerprint, filename, size, architecture, type, public,
    auto_update, cached, creation_date, expiry_date, upload_date, last_use_date FROM images`, `
CREATE TABLE images_properties_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    image_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (image_id) REFERENCES images_new (id) ON DELETE CASCADE,
    UNIQUE (image_id, key)
)`,
		`INSERT INTO images_properties_new (id, image_id, key, value) SELECT id, image_id, key, value FROM images_properties`, `
CREATE TABLE images_aliases_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    image_id INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (image_id) REFERENCES images_new (id) ON DELETE CASCADE,
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, name)
)`, `
INSERT INTO images_aliases_new (id, project_id, name, image_id, description, type)
SELECT id, project_id, name, image_id, description, type FROM images_aliases`,
		`DROP TABLE images_aliases`,
		`DROP TABLE images_properties`,
		`DROP TABLE images`,
		`ALTER TABLE images_new RENAME TO images`,
		`ALTER TABLE images_properties_new RENAME TO images_properties`,
		`ALTER TABLE images_aliases_new RENAME TO images_aliases`,
		`CREATE INDEX images_aliases_image_id_idx ON images_aliases (image_id)`,
		`CREATE INDEX images_fingerprint_idx ON images (fingerprint)`,
	}

	for _, s := range stmts {
		_, err := tx.ExecContext(ctx, s)
		if err != nil {
			return fmt.Errorf("making images per project: %w", err)
		}
	}

	return nil
}
