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

// The membership core's queries (issue 16): the members rows as lxd/cluster reads and
// writes them on enable and join, and the pending join tokens. Uniqueness is checked by
// query too, not only by the UNIQUE constraints: dqlite reports constraint errors in
// its own shape.

// MemberRow is one row of members.
type MemberRow struct {
	ID            int64
	Name          string
	Address       string
	Description   string
	SchemaVersion int
	APIExtensions int
	Arch          string
	FailureDomain string
	Evacuated     bool
	Heartbeat     time.Time
}

const memberColumns = `id, name, address, description, schema_version, api_extensions, arch, failure_domain, evacuated, heartbeat`

func scanMember(s interface{ Scan(...any) error }) (MemberRow, error) {
	var m MemberRow
	err := s.Scan(&m.ID, &m.Name, &m.Address, &m.Description, &m.SchemaVersion, &m.APIExtensions, &m.Arch,
		&m.FailureDomain, &m.Evacuated, dbTime{&m.Heartbeat})
	return m, err
}

// ClusterMembers lists the members by id.
func (tx *Tx) ClusterMembers(ctx context.Context) ([]MemberRow, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT `+memberColumns+` FROM members ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing members: %w", err)
	}

	defer func() { _ = rows.Close() }()
	var out []MemberRow
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("reading members: %w", err)
		}

		out = append(out, m)
	}

	return out, rows.Err()
}

// ClusterMember is the member of that name (404 when there is none).
func (tx *Tx) ClusterMember(ctx context.Context, name string) (MemberRow, error) {
	m, err := scanMember(tx.tx.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return m, notFound("cluster member", name)
	}

	if err != nil {
		return m, fmt.Errorf("reading member %q: %w", name, err)
	}

	return m, nil
}

// ClusterMemberSetIdentity rewrites a member's name, address, levels and architecture
// (cluster enable renames row 1 from "none"). A name or address another member holds
// is a 409.
func (tx *Tx) ClusterMemberSetIdentity(ctx context.Context, m MemberRow) error {
	err := tx.memberFree(ctx, m.ID, m.Name, m.Address)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "cluster member", m.Name,
		`UPDATE members SET name = ?, address = ?, schema_version = ?, api_extensions = ?, arch = ? WHERE id = ?`,
		m.Name, m.Address, m.SchemaVersion, m.APIExtensions, m.Arch, m.ID)
}

// ClusterMemberAdd inserts a new member and returns its id: 409 when its name or
// address is taken.
func (tx *Tx) ClusterMemberAdd(ctx context.Context, m MemberRow) (int64, error) {
	err := tx.memberFree(ctx, 0, m.Name, m.Address)
	if err != nil {
		return 0, err
	}

	res, err := tx.tx.ExecContext(ctx,
		`INSERT INTO members (name, address, description, schema_version, api_extensions, arch, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		m.Name, m.Address, m.Description, m.SchemaVersion, m.APIExtensions, m.Arch, timeToDB(m.Heartbeat))
	if err != nil {
		return 0, fmt.Errorf("adding member %q: %w", m.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("adding member %q: %w", m.Name, err)
	}

	// Every member starts in the default cluster group, as in LXD.
	return id, tx.addToDefaultGroup(ctx, id)
}

// memberFree is a 409 when a member other than self holds name or address.
func (tx *Tx) memberFree(ctx context.Context, self int64, name, address string) error {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM members WHERE name = ? AND id != ?`, name, self).Scan(&n)
	if err != nil {
		return fmt.Errorf("checking member name %q: %w", name, err)
	}

	if n > 0 {
		return alreadyExists("cluster member", name)
	}

	if address == "" {
		return nil
	}

	err = tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM members WHERE address = ? AND id != ?`, address, self).Scan(&n)
	if err != nil {
		return fmt.Errorf("checking member address %q: %w", address, err)
	}

	if n > 0 {
		return api.StatusErrorf(http.StatusConflict, "a cluster member already has address %q", address)
	}

	return nil
}

// TokenRow is a pending join token: the secret is kept as its SHA-256 only.
type TokenRow struct {
	Name         string
	SecretSHA256 string
	CreatedAt    time.Time
	ExpiresAt    time.Time // zero: never
}

// ClusterTokenPut stores a join token for a name, replacing the name's earlier one.
func (tx *Tx) ClusterTokenPut(ctx context.Context, t TokenRow) error {
	_, err := tx.tx.ExecContext(ctx, `DELETE FROM cluster_tokens WHERE name = ?`, t.Name)
	if err != nil {
		return fmt.Errorf("replacing join token of %q: %w", t.Name, err)
	}

	_, err = tx.tx.ExecContext(ctx, `INSERT INTO cluster_tokens (name, secret_sha256, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		t.Name, t.SecretSHA256, timeToDB(t.CreatedAt), timeToDB(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storing join token of %q: %w", t.Name, err)
	}

	return nil
}

// ClusterTokens lists the pending join tokens by name, expired ones included.
func (tx *Tx) ClusterTokens(ctx context.Context) ([]TokenRow, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT name, secret_sha256, created_at, expires_at FROM cluster_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing join tokens: %w", err)
	}

	defer func() { _ = rows.Close() }()
	var out []TokenRow
	for rows.Next() {
		var t TokenRow
		err := rows.Scan(&t.Name, &t.SecretSHA256, dbTime{&t.CreatedAt}, dbTime{&t.ExpiresAt})
		if err != nil {
			return nil, fmt.Errorf("reading join tokens: %w", err)
		}

		out = append(out, t)
	}

	return out, rows.Err()
}

// ClusterTokenDelete removes a name's join token (404 when it has none).
func (tx *Tx) ClusterTokenDelete(ctx context.Context, name string) error {
	return tx.execOne(ctx, "join token", name, `DELETE FROM cluster_tokens WHERE name = ?`, name)
}
