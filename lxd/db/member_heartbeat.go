package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SetMemberHeartbeat writes a member's own heartbeat into its row: the time, and its
// address (kept when empty), schema version and API extension count. 404 if the row is
// gone (the member was removed from the cluster).
func (tx *Tx) SetMemberHeartbeat(ctx context.Context, id int64, address string, schemaVersion, apiExtensions int, at time.Time) error {
	return tx.execOne(ctx, "cluster member", fmt.Sprintf("#%d", id), `
UPDATE members SET heartbeat = ?, address = COALESCE(NULLIF(?, ''), address), schema_version = ?, api_extensions = ?
WHERE id = ?`, timeToDB(at), address, schemaVersion, apiExtensions, id)
}

// MemberVersion is one member's recorded versions (the upgrade gate's view of a row).
type MemberVersion struct {
	ID            int64
	Name          string
	SchemaVersion int
	APIExtensions int
}

// ExchangeMemberVersions sets member id's schema version and API extension count and
// hands every member's to decide, in one transaction that commits only when decide
// returns true. It works on the raw global database before its schema is brought up to
// date (it runs before the updates are applied, to decide whether they may be), so it
// uses the members table's columns as V11 made them and nothing newer.
func ExchangeMemberVersions(ctx context.Context, sqlDB *sql.DB, id int64, schemaVersion, apiExtensions int, decide func([]MemberVersion) bool) error {
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning member version check: %w", err)
	}

	defer func() { _ = tx.Rollback() }()

	res, err := tx.ExecContext(ctx, `UPDATE members SET schema_version = ?, api_extensions = ? WHERE id = ?`, schemaVersion, apiExtensions, id)
	if err != nil {
		return fmt.Errorf("recording this member's versions: %w", err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("recording this member's versions: %w", err)
	}

	if n != 1 {
		return notFound("cluster member", fmt.Sprintf("#%d", id)) // removed from the cluster
	}

	rows, err := tx.QueryContext(ctx, `SELECT id, name, schema_version, api_extensions FROM members ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading members' versions: %w", err)
	}

	var all []MemberVersion
	for rows.Next() {
		var v MemberVersion
		err := rows.Scan(&v.ID, &v.Name, &v.SchemaVersion, &v.APIExtensions)
		if err != nil {
			_ = rows.Close()
			return fmt.Errorf("scanning member versions: %w", err)
		}

		all = append(all, v)
	}

	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return fmt.Errorf("reading members' versions: %w", err)
	}

	if !decide(all) {
		return nil // rolled back
	}

	err = tx.Commit()
	if err != nil {
		return fmt.Errorf("committing this member's versions: %w", err)
	}

	return nil
}
