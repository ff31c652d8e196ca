package db

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// An upgraded host has instances when the members update runs: they all become this
// host's (member 1, "none"), and the update must not fail on a table with rows (a
// REFERENCES column with a non-NULL default is refused then).
func TestUpdateMembersKeepsInstances(t *testing.T) {
	ctx := context.Background()
	raw := openRaw(t)

	_, err := schema.Ensure(ctx, raw, updates[:11]) // up to per-project images (updateFromV10)
	if err != nil {
		t.Fatal(err)
	}

	_, err = raw.ExecContext(ctx, `INSERT INTO instances (id, name, type, architecture) VALUES (5, 'c1', 'container', 'x86_64')`)
	if err != nil {
		t.Fatal(err)
	}

	_, err = schema.Ensure(ctx, raw, updates)
	if err != nil {
		t.Fatalf("updating a database with an instance: %v", err)
	}

	var member int64
	var name string
	err = raw.QueryRowContext(ctx, `SELECT i.member_id, m.name FROM instances i JOIN members m ON m.id = i.member_id WHERE i.id = 5`).Scan(&member, &name)
	if err != nil || member != 1 || name != "none" {
		t.Fatalf("instance c1 after the update: member %d %q, %v; want 1 none", member, name, err)
	}
}
