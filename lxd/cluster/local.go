package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// local is what a clustered member keeps of itself in database/local.db: its member id
// and name in the global members table and its cluster.https_address. The row exists
// only once the member is clustered: its presence is the mode switch.
type local struct {
	MemberID int64
	Name     string
	Address  string
}

const localSchema = `
CREATE TABLE IF NOT EXISTS member (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    member_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    https_address TEXT NOT NULL
)`

// readLocal returns the member's own row; ok false when it is not clustered.
func readLocal(ctx context.Context, conn *sql.DB) (l local, ok bool, err error) {
	_, err = conn.ExecContext(ctx, localSchema)
	if err != nil {
		return l, false, fmt.Errorf("creating local.db schema: %w", err)
	}

	err = conn.QueryRowContext(ctx, `SELECT member_id, name, https_address FROM member WHERE id = 1`).Scan(&l.MemberID, &l.Name, &l.Address)
	if errors.Is(err, sql.ErrNoRows) {
		return local{}, false, nil
	}

	if err != nil {
		return l, false, fmt.Errorf("reading local.db: %w", err)
	}

	return l, true, nil
}

// writeLocal records the member's own row: from then on the daemon starts clustered.
func writeLocal(ctx context.Context, conn *sql.DB, l local) error {
	_, err := conn.ExecContext(ctx, localSchema)
	if err != nil {
		return fmt.Errorf("creating local.db schema: %w", err)
	}

	_, err = conn.ExecContext(ctx, `INSERT OR REPLACE INTO member (id, member_id, name, https_address) VALUES (1, ?, ?, ?)`,
		l.MemberID, l.Name, l.Address)
	if err != nil {
		return fmt.Errorf("writing local.db: %w", err)
	}

	return nil
}
