package db

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// The image tables rebuilt per project keep every row (ids, properties, aliases) as the
// default project's, and then take the same fingerprint and alias name in another project.
func TestUpdateImagesPerProjectKeepsRows(t *testing.T) {
	ctx := context.Background()
	raw := openRaw(t)

	_, err := schema.Ensure(ctx, raw, updates[:9]) // up to projects (updateFromV8)
	if err != nil {
		t.Fatal(err)
	}

	fp := fingerprint("abc")
	for _, stmt := range []string{
		`INSERT INTO images (id, fingerprint, filename, size, architecture, type, public) VALUES (7, '` + fp + `', 'f.tar.gz', 10, 'x86_64', 'container', 1)`,
		`INSERT INTO images_properties (image_id, key, value) VALUES (7, 'os', 'debian')`,
		`INSERT INTO images_aliases (name, image_id, description) VALUES ('deb', 7, 'old')`,
		`INSERT INTO projects (id, name) VALUES (2, 'a')`,
	} {
		_, err := raw.ExecContext(ctx, stmt)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	_, err = schema.Ensure(ctx, raw, updates)
	if err != nil {
		t.Fatal(err)
	}

	var proj, key, alias string
	err = raw.QueryRowContext(ctx, `
SELECT p.name, ip.key, a.name FROM images i JOIN projects p ON p.id = i.project_id
JOIN images_properties ip ON ip.image_id = i.id JOIN images_aliases a ON a.image_id = i.id
WHERE i.id = 7 AND a.project_id = 1`).Scan(&proj, &key, &alias)
	if err != nil || proj != "default" || key != "os" || alias != "deb" {
		t.Fatalf("image 7 after the update = %q %q %q, %v; want default os deb", proj, key, alias, err)
	}

	for _, stmt := range []string{
		`INSERT INTO images (id, project_id, fingerprint, filename, size, architecture, type) VALUES (8, 2, '` + fp + `', 'f.tar.gz', 10, 'x86_64', 'container')`,
		`INSERT INTO images_aliases (project_id, name, image_id) VALUES (2, 'deb', 8)`,
	} {
		_, err := raw.ExecContext(ctx, stmt)
		if err != nil {
			t.Fatalf("same fingerprint and alias in another project: %s: %v", stmt, err)
		}
	}

	_, err = raw.ExecContext(ctx, `INSERT INTO images (project_id, fingerprint, filename, size, architecture, type) VALUES (2, '`+fp+`', 'f', 1, 'x', 'container')`)
	if err == nil {
		t.Fatal("a second row of the same fingerprint in one project was accepted")
	}

	// The children point at the rebuilt images table: deleting a row cascades.
	_, err = raw.ExecContext(ctx, `DELETE FROM images WHERE id = 7`)
	if err != nil {
		t.Fatal(err)
	}

	var n int
	err = raw.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM images_properties) + (SELECT COUNT(*) FROM images_aliases WHERE project_id = 1)`).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("children of a deleted image = %d, %v; want 0", n, err)
	}

	rows, err := raw.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = rows.Close() }()
	if rows.Next() {
		t.Fatal("foreign key violations after the update")
	}
}
