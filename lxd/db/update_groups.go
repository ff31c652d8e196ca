package db

import (
	"context"
	"database/sql"
	"fmt"
)

// updateFromV12 adds cluster groups (issue 16), as LXD 5.0 has them: named sets of
// members that placement can target (?target=@group). There is always a group
// "default" (id 1) and every member is in at least one group: every existing member
// starts in "default" (a host never clustered has its "none" row there, so a later
// enable needs nothing). members_cluster_groups links the two; a member or group that
// goes takes its links with it.
func updateFromV12(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE cluster_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
)`, `
CREATE TABLE members_cluster_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    member_id INTEGER NOT NULL,
    group_id INTEGER NOT NULL,
    FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE,
    FOREIGN KEY (group_id) REFERENCES cluster_groups (id) ON DELETE CASCADE,
    UNIQUE (member_id, group_id)
)`,
		`INSERT INTO cluster_groups (id, name, description) VALUES (1, 'default', 'Default cluster group')`,
		`INSERT INTO members_cluster_groups (member_id, group_id) SELECT id, 1 FROM members`,
	}

	for _, s := range stmts {
		_, err := tx.ExecContext(ctx, s)
		if err != nil {
			return fmt.Errorf("adding cluster groups: %w", err)
		}
	}

	return nil
}
