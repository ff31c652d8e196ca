package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// SelfMemberID is the member row of a host that never joined a cluster: the one every
// instance belongs to by default.
const SelfMemberID = 1

// The member queries of the cluster API and placement (issue 16), beside the
// membership core's (cluster_core.go: MemberRow, ClusterMembers, ClusterMember,
// ClusterMemberAdd). Like those, uniqueness is checked by query: dqlite reports
// constraint errors in its own shape.

// GetMemberByID returns the member with that id, or a 404 StatusError.
func (tx *Tx) GetMemberByID(ctx context.Context, id int64) (MemberRow, error) {
	m, err := scanMember(tx.tx.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, notFound("cluster member", fmt.Sprintf("#%d", id))
	}

	if err != nil {
		return m, fmt.Errorf("reading member %d: %w", id, err)
	}

	return m, nil
}

// RenameMember renames a member (only its name: its instances follow by id): 404 if
// old is missing, 409 if new is taken.
func (tx *Tx) RenameMember(ctx context.Context, oldName, newName string) error {
	m, err := tx.ClusterMember(ctx, oldName)
	if err != nil {
		return err
	}

	err = tx.memberFree(ctx, m.ID, newName, "")
	if err != nil {
		return err
	}

	return tx.rename(ctx, "cluster member", `UPDATE members SET name = ? WHERE name = ?`, oldName, newName)
}

// UpdateMember sets a member's writable fields (description, failure domain; an empty
// failure domain is "default").
func (tx *Tx) UpdateMember(ctx context.Context, name, description, failureDomain string) error {
	if failureDomain == "" {
		failureDomain = "default"
	}

	return tx.execOne(ctx, "cluster member", name, `UPDATE members SET description = ?, failure_domain = ? WHERE name = ?`,
		description, failureDomain, name)
}

// SetMemberEvacuated marks a member evacuated or not.
func (tx *Tx) SetMemberEvacuated(ctx context.Context, name string, evacuated bool) error {
	return tx.execOne(ctx, "cluster member", name, `UPDATE members SET evacuated = ? WHERE name = ?`, evacuated, name)
}

// DeleteMember deletes a member row. A member that still has instances is refused
// with a 400 naming how many (their rows would point nowhere), unless force: then its
// instance rows go with it (LXD's forced removal of a member that is gone for good;
// their config, devices, profile links and snapshots follow by cascade).
func (tx *Tx) DeleteMember(ctx context.Context, name string, force bool) error {
	id, err := tx.lookupID(ctx, `SELECT id FROM members WHERE name = ?`, "cluster member", name)
	if err != nil {
		return err
	}

	n, err := tx.memberInstanceCount(ctx, id)
	if err != nil {
		return err
	}

	if n > 0 && !force {
		return api.StatusErrorf(http.StatusBadRequest, "cluster member %q still has %d instances (move or delete them, or force)", name, n)
	}

	if n > 0 {
		_, err = tx.tx.ExecContext(ctx, `DELETE FROM instances WHERE member_id = ?`, id)
		if err != nil {
			return fmt.Errorf("deleting the instances of cluster member %q: %w", name, err)
		}
	}

	return tx.execOne(ctx, "cluster member", name, `DELETE FROM members WHERE id = ?`, id)
}

func (tx *Tx) memberInstanceCount(ctx context.Context, id int64) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM instances WHERE member_id = ?`, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting instances of member %d: %w", id, err)
	}

	return n, nil
}

// GetMemberInstanceCounts maps each member id to how many instances it holds; a member
// without instances is in the map with 0.
func (tx *Tx) GetMemberInstanceCounts(ctx context.Context) (map[int64]int, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT m.id, count(i.id) FROM members m LEFT JOIN instances i ON i.member_id = m.id GROUP BY m.id`)
	if err != nil {
		return nil, fmt.Errorf("counting instances per member: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		err := rows.Scan(&id, &n)
		if err != nil {
			return nil, fmt.Errorf("scanning instance count: %w", err)
		}

		out[id] = n
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instance counts: %w", err)
	}

	return out, nil
}

// GetMemberHeartbeats maps each member id to its last heartbeat (zero: never). The
// failure detector reads this alone, without the rest of the rows.
func (tx *Tx) GetMemberHeartbeats(ctx context.Context) (map[int64]time.Time, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT id, heartbeat FROM members`)
	if err != nil {
		return nil, fmt.Errorf("querying member heartbeats: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := map[int64]time.Time{}
	for rows.Next() {
		var id int64
		var t time.Time
		err := rows.Scan(&id, dbTime{&t})
		if err != nil {
			return nil, fmt.Errorf("scanning member heartbeat: %w", err)
		}

		out[id] = t
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading member heartbeats: %w", err)
	}

	return out, nil
}
