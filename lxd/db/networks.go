package db

import (
	"context"
	"fmt"
)

const networksSelect = `
SELECT id, name, type, description FROM networks WHERE ? IS NULL OR name = ? ORDER BY name`

const networksConfigSelect = `
SELECT c.network_id, c.key, c.value
FROM networks_config c JOIN networks n ON n.id = c.network_id
WHERE ? IS NULL OR n.name = ?`

// GetNetworks returns all networks sorted by name, with config.
func (tx *Tx) GetNetworks(ctx context.Context) ([]Network, error) {
	return tx.getNetworks(ctx, nil)
}

// GetNetwork returns one network, or a 404 StatusError.
func (tx *Tx) GetNetwork(ctx context.Context, name string) (*Network, error) {
	networks, err := tx.getNetworks(ctx, &name)
	if err != nil {
		return nil, err
	}

	if len(networks) == 0 {
		return nil, notFound("network", name)
	}

	return &networks[0], nil
}

func (tx *Tx) getNetworks(ctx context.Context, name *string) ([]Network, error) {
	rows, err := tx.tx.QueryContext(ctx, networksSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("querying networks: %w", err)
	}

	defer func() { _ = rows.Close() }()

	networks := []Network{}
	for rows.Next() {
		var n Network
		err := rows.Scan(&n.ID, &n.Name, &n.Type, &n.Description)
		if err != nil {
			return nil, fmt.Errorf("scanning network: %w", err)
		}

		networks = append(networks, n)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading networks: %w", err)
	}

	_ = rows.Close()

	config, err := tx.loadConfig(ctx, networksConfigSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("loading network config: %w", err)
	}

	for i := range networks {
		networks[i].Config = orEmpty(config[networks[i].ID])
	}

	return networks, nil
}

const networkIDSelect = `SELECT id FROM networks WHERE name = ?`

func (tx *Tx) networkID(ctx context.Context, name string) (int64, error) {
	return tx.lookupID(ctx, networkIDSelect, "network", name)
}

const networkInsert = `INSERT INTO networks (name, type, description) VALUES (?, ?, ?)`

const networkConfigInsert = `INSERT INTO networks_config (network_id, key, value) VALUES (?, ?, ?)`

// CreateNetwork inserts a network with its config and returns its id.
func (tx *Tx) CreateNetwork(ctx context.Context, n Network) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, networkInsert, n.Name, n.Type, n.Description)
	if isUnique(err) {
		return 0, alreadyExists("network", n.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting network %q: %w", n.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting network %q: %w", n.Name, err)
	}

	err = tx.insertConfig(ctx, networkConfigInsert, id, n.Config)
	if err != nil {
		return 0, fmt.Errorf("inserting network %q: %w", n.Name, err)
	}

	return id, nil
}

const networkUpdate = `UPDATE networks SET description = ? WHERE id = ?`

const networkConfigDelete = `DELETE FROM networks_config WHERE network_id = ?`

// UpdateNetwork replaces the description and config of a network; the type stays.
func (tx *Tx) UpdateNetwork(ctx context.Context, name string, n Network) error {
	id, err := tx.networkID(ctx, name)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, networkUpdate, n.Description, id)
	if err != nil {
		return fmt.Errorf("updating network %q: %w", name, err)
	}

	_, err = tx.tx.ExecContext(ctx, networkConfigDelete, id)
	if err != nil {
		return fmt.Errorf("clearing config of network %q: %w", name, err)
	}

	err = tx.insertConfig(ctx, networkConfigInsert, id, n.Config)
	if err != nil {
		return fmt.Errorf("updating network %q: %w", name, err)
	}

	return nil
}

const networkRename = `UPDATE networks SET name = ? WHERE name = ?`

// RenameNetwork renames a network: 404 if old is missing, 409 if new is taken.
func (tx *Tx) RenameNetwork(ctx context.Context, oldName, newName string) error {
	return tx.rename(ctx, "network", networkRename, oldName, newName)
}

const networkDelete = `DELETE FROM networks WHERE name = ?`

// DeleteNetwork deletes a network and its config. Whether NICs still use it is
// the caller's check.
func (tx *Tx) DeleteNetwork(ctx context.Context, name string) error {
	return tx.execOne(ctx, "network", name, networkDelete, name)
}
