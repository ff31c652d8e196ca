package db

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/shared/api"
)

// NetworkACL is an ACL row.
type NetworkACL struct {
	Name string
	api.NetworkACLPut
}

const aclsSelect = `SELECT name, description, ingress, egress, config FROM networks_acls WHERE ?1 IS NULL OR name = ?1 ORDER BY name`

// GetNetworkACLs lists every ACL by name.
func (tx *Tx) GetNetworkACLs(ctx context.Context) ([]NetworkACL, error) {
	return tx.queryACLs(ctx, nil)
}

// HasNetworkACLs reports whether any ACL exists.
func (tx *Tx) HasNetworkACLs(ctx context.Context) (bool, error) {
	var exist bool
	err := tx.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM networks_acls)`).Scan(&exist)
	if err != nil {
		return false, fmt.Errorf("looking for network ACLs: %w", err)
	}

	return exist, nil
}

// GetNetworkACL returns one ACL: 404 when there is none.
func (tx *Tx) GetNetworkACL(ctx context.Context, name string) (*NetworkACL, error) {
	acls, err := tx.queryACLs(ctx, name)
	if err != nil {
		return nil, err
	}

	if len(acls) == 0 {
		return nil, notFound("network ACL", name)
	}

	return &acls[0], nil
}

func (tx *Tx) queryACLs(ctx context.Context, name any) ([]NetworkACL, error) {
	rows, err := tx.tx.QueryContext(ctx, aclsSelect, name)
	if err != nil {
		return nil, fmt.Errorf("querying network ACLs: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := []NetworkACL{}
	for rows.Next() {
		var a NetworkACL
		var ingress, egress, config string
		err := rows.Scan(&a.Name, &a.Description, &ingress, &egress, &config)
		if err != nil {
			return nil, fmt.Errorf("scanning network ACL: %w", err)
		}

		err = json.Unmarshal([]byte(ingress), &a.Ingress)
		if err == nil {
			err = json.Unmarshal([]byte(egress), &a.Egress)
		}

		if err == nil {
			err = json.Unmarshal([]byte(config), &a.Config)
		}

		if err != nil {
			return nil, fmt.Errorf("decoding network ACL %s: %w", a.Name, err)
		}

		out = append(out, a)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading network ACLs: %w", err)
	}

	return out, nil
}

func aclJSON(a NetworkACL) ([3]string, error) {
	var out [3]string
	for i, v := range []any{nonNilRules(a.Ingress), nonNilRules(a.Egress), orEmpty(a.Config)} {
		b, err := json.Marshal(v)
		if err != nil {
			return out, err
		}

		out[i] = string(b)
	}

	return out, nil
}

func nonNilRules(r []api.NetworkACLRule) []api.NetworkACLRule {
	if r == nil {
		return []api.NetworkACLRule{}
	}

	return r
}

// CreateNetworkACL inserts an ACL: 409 when the name is taken.
func (tx *Tx) CreateNetworkACL(ctx context.Context, a NetworkACL) error {
	j, err := aclJSON(a)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `INSERT INTO networks_acls (name, description, ingress, egress, config) VALUES (?, ?, ?, ?, ?)`,
		a.Name, a.Description, j[0], j[1], j[2])
	if isUnique(err) {
		return alreadyExists("network ACL", a.Name)
	}

	if err != nil {
		return fmt.Errorf("inserting network ACL %s: %w", a.Name, err)
	}

	return nil
}

// UpdateNetworkACL replaces an ACL's writable fields: 404 when there is none.
func (tx *Tx) UpdateNetworkACL(ctx context.Context, a NetworkACL) error {
	j, err := aclJSON(a)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "network ACL", a.Name, `UPDATE networks_acls SET description = ?, ingress = ?, egress = ?, config = ? WHERE name = ?`,
		a.Description, j[0], j[1], j[2], a.Name)
}

// RenameNetworkACL renames an ACL: 404 if missing, 409 if the new name is taken.
func (tx *Tx) RenameNetworkACL(ctx context.Context, oldName, newName string) error {
	return tx.rename(ctx, "network ACL", `UPDATE networks_acls SET name = ? WHERE name = ?`, oldName, newName)
}

// DeleteNetworkACL deletes an ACL: 404 when there is none.
func (tx *Tx) DeleteNetworkACL(ctx context.Context, name string) error {
	return tx.execOne(ctx, "network ACL", name, `DELETE FROM networks_acls WHERE name = ?`, name)
}
