package db

import (
	"context"
	"fmt"
)

const storagePoolsSelect = `
SELECT id, name, driver, description FROM storage_pools WHERE ? IS NULL OR name = ? ORDER BY name`

const storagePoolsConfigSelect = `
SELECT c.storage_pool_id, c.key, c.value
FROM storage_pools_config c JOIN storage_pools p ON p.id = c.storage_pool_id
WHERE ? IS NULL OR p.name = ?`

// GetStoragePools returns all storage pools sorted by name, with config.
func (tx *Tx) GetStoragePools(ctx context.Context) ([]StoragePool, error) {
	return tx.getStoragePools(ctx, nil)
}

// GetStoragePool returns one storage pool, or a 404 StatusError.
func (tx *Tx) GetStoragePool(ctx context.Context, name string) (*StoragePool, error) {
	pools, err := tx.getStoragePools(ctx, &name)
	if err != nil {
		return nil, err
	}

	if len(pools) == 0 {
		return nil, notFound("storage pool", name)
	}

	return &pools[0], nil
}

func (tx *Tx) getStoragePools(ctx context.Context, name *string) ([]StoragePool, error) {
	rows, err := tx.tx.QueryContext(ctx, storagePoolsSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("querying storage pools: %w", err)
	}

	defer func() { _ = rows.Close() }()

	pools := []StoragePool{}
	for rows.Next() {
		var p StoragePool
		err := rows.Scan(&p.ID, &p.Name, &p.Driver, &p.Description)
		if err != nil {
			return nil, fmt.Errorf("scanning storage pool: %w", err)
		}

		pools = append(pools, p)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading storage pools: %w", err)
	}

	_ = rows.Close()

	config, err := tx.loadConfig(ctx, storagePoolsConfigSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("loading storage pool config: %w", err)
	}

	for i := range pools {
		pools[i].Config = orEmpty(config[pools[i].ID])
	}

	return pools, nil
}

const storagePoolIDSelect = `SELECT id FROM storage_pools WHERE name = ?`

func (tx *Tx) storagePoolID(ctx context.Context, name string) (int64, error) {
	return tx.lookupID(ctx, storagePoolIDSelect, "storage pool", name)
}

const storagePoolInsert = `INSERT INTO storage_pools (name, driver, description) VALUES (?, ?, ?)`

const storagePoolConfigInsert = `INSERT INTO storage_pools_config (storage_pool_id, key, value) VALUES (?, ?, ?)`

// CreateStoragePool inserts a storage pool with its config and returns its id.
func (tx *Tx) CreateStoragePool(ctx context.Context, p StoragePool) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, storagePoolInsert, p.Name, p.Driver, p.Description)
	if isUnique(err) {
		return 0, alreadyExists("storage pool", p.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting storage pool %q: %w", p.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting storage pool %q: %w", p.Name, err)
	}

	err = tx.insertConfig(ctx, storagePoolConfigInsert, id, p.Config)
	if err != nil {
		return 0, fmt.Errorf("inserting storage pool %q: %w", p.Name, err)
	}

	return id, nil
}

const storagePoolUpdate = `UPDATE storage_pools SET description = ? WHERE id = ?`

const storagePoolConfigDelete = `DELETE FROM storage_pools_config WHERE storage_pool_id = ?`

// UpdateStoragePool replaces the description and config of a pool; the driver stays.
func (tx *Tx) UpdateStoragePool(ctx context.Context, name string, p StoragePool) error {
	id, err := tx.storagePoolID(ctx, name)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, storagePoolUpdate, p.Description, id)
	if err != nil {
		return fmt.Errorf("updating storage pool %q: %w", name, err)
	}

	_, err = tx.tx.ExecContext(ctx, storagePoolConfigDelete, id)
	if err != nil {
		return fmt.Errorf("clearing config of storage pool %q: %w", name, err)
	}

	err = tx.insertConfig(ctx, storagePoolConfigInsert, id, p.Config)
	if err != nil {
		return fmt.Errorf("updating storage pool %q: %w", name, err)
	}

	return nil
}

const storagePoolDelete = `DELETE FROM storage_pools WHERE name = ?`

// DeleteStoragePool deletes a pool and its config. Whether instances still use it
// is the caller's check: root devices name pools in free-form config.
func (tx *Tx) DeleteStoragePool(ctx context.Context, name string) error {
	return tx.execOne(ctx, "storage pool", name, storagePoolDelete, name)
}
