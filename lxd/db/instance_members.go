package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// InstanceMember returns the id of the member instance key lives on, one indexed
// lookup: forwarding asks it for every instance request. An unknown instance is a 404.
func (tx *Tx) InstanceMember(ctx context.Context, key string) (int64, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx, `SELECT member_id FROM instances WHERE name = ?`, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("instance", key)
	}

	if err != nil {
		return 0, fmt.Errorf("looking up the member of instance %q: %w", key, err)
	}

	return id, nil
}

// InstanceMembers maps every instance's key to the id of the member it lives on.
func (tx *Tx) InstanceMembers(ctx context.Context) (map[string]int64, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT name, member_id FROM instances`)
	if err != nil {
		return nil, fmt.Errorf("querying instance members: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := map[string]int64{}
	for rows.Next() {
		var key string
		var id int64
		err := rows.Scan(&key, &id)
		if err != nil {
			return nil, fmt.Errorf("scanning instance member: %w", err)
		}

		out[key] = id
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instance members: %w", err)
	}

	return out, nil
}
