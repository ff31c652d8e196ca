package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-dev/berth/shared/project"
)

// StorageVolume is one row of storage_volumes: a custom volume of a pool.
type StorageVolume struct {
	ID          int64
	Pool        string
	Name        string
	Description string
	ContentType string
	Config      map[string]string // never nil
	CreatedAt   time.Time
}

// StorageVolumeSnapshot is one row of storage_volumes_snapshots.
type StorageVolumeSnapshot struct {
	ID          int64
	Pool        string
	Volume      string
	Name        string
	Description string
	Config      map[string]string // never nil: the volume's config when it was taken
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

const volumesSelect = `
SELECT v.id, p.name, v.name, v.description, v.content_type, v.config, v.creation_date
FROM storage_volumes v JOIN storage_pools p ON p.id = v.storage_pool_id
WHERE (?1 IS NULL OR p.name = ?1) AND (?2 IS NULL OR v.name = ?2)
ORDER BY p.name, v.name`

// GetStorageVolumes lists the volumes of a pool (every pool with pool nil), by name.
func (tx *Tx) GetStorageVolumes(ctx context.Context, pool *string) ([]StorageVolume, error) {
	return tx.queryVolumes(ctx, pool, nil)
}

// GetStorageVolume returns one volume, or a 404 StatusError.
func (tx *Tx) GetStorageVolume(ctx context.Context, pool, name string) (*StorageVolume, error) {
	vols, err := tx.queryVolumes(ctx, &pool, &name)
	if err != nil {
		return nil, err
	}

	if len(vols) == 0 {
		return nil, notFound("storage volume", name)
	}

	return &vols[0], nil
}

func (tx *Tx) queryVolumes(ctx context.Context, pool, name *string) ([]StorageVolume, error) {
	rows, err := tx.tx.QueryContext(ctx, volumesSelect, pool, name)
	if err != nil {
		return nil, fmt.Errorf("querying storage volumes: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := []StorageVolume{}
	for rows.Next() {
		var v StorageVolume
		var config string
		err := rows.Scan(&v.ID, &v.Pool, &v.Name, &v.Description, &v.ContentType, &config, dbTime{&v.CreatedAt})
		if err != nil {
			return nil, fmt.Errorf("scanning storage volume: %w", err)
		}

		err = json.Unmarshal([]byte(config), &v.Config)
		if err != nil {
			return nil, fmt.Errorf("decoding storage volume %s: %w", v.Name, err)
		}

		v.Config = orEmpty(v.Config)
		out = append(out, v)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading storage volumes: %w", err)
	}

	return out, nil
}

// CreateStorageVolume inserts a volume: 409 when its pool has one of that name.
func (tx *Tx) CreateStorageVolume(ctx context.Context, v StorageVolume) error {
	poolID, err := tx.storagePoolID(ctx, v.Pool)
	if err != nil {
		return err
	}

	config, err := json.Marshal(orEmpty(v.Config))
	if err != nil {
		return err
	}

	// The key names the owning project (shared/project VolumeKey).
	projID, err := tx.lookupID(ctx, projectIDSelect, "project", project.VolumeProject(v.Name))
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `INSERT INTO storage_volumes (storage_pool_id, name, description, content_type, config, creation_date, project_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		poolID, v.Name, v.Description, v.ContentType, string(config), timeToDB(v.CreatedAt), projID)
	if isUnique(err) {
		return alreadyExists("storage volume", v.Name)
	}

	if err != nil {
		return fmt.Errorf("inserting storage volume %s: %w", v.Name, err)
	}

	return nil
}

// UpdateStorageVolume replaces a volume's description and config.
func (tx *Tx) UpdateStorageVolume(ctx context.Context, pool, name, description string, config map[string]string) error {
	b, err := json.Marshal(orEmpty(config))
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "storage volume", name, `UPDATE storage_volumes SET description = ?, config = ?
WHERE name = ? AND storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?)`, description, string(b), name, pool)
}

// RenameStorageVolume renames a volume within its pool: 409 when the name is taken.
func (tx *Tx) RenameStorageVolume(ctx context.Context, pool, name, newName string) error {
	err := tx.execOne(ctx, "storage volume", name, `UPDATE storage_volumes SET name = ?
WHERE name = ? AND storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?)`, newName, name, pool)
	if isUnique(err) {
		return alreadyExists("storage volume", newName)
	}

	return err
}

// DeleteStorageVolume deletes a volume and its snapshots' rows.
func (tx *Tx) DeleteStorageVolume(ctx context.Context, pool, name string) error {
	return tx.execOne(ctx, "storage volume", name, `DELETE FROM storage_volumes
WHERE name = ? AND storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?)`, name, pool)
}

const volumeSnapshotsSelect = `
SELECT s.id, p.name, v.name, s.name, s.description, s.config, s.creation_date, s.expiry_date
FROM storage_volumes_snapshots s
JOIN storage_volumes v ON v.id = s.storage_volume_id
JOIN storage_pools p ON p.id = v.storage_pool_id
WHERE p.name = ?1 AND v.name = ?2 AND (?3 IS NULL OR s.name = ?3)
ORDER BY s.creation_date, s.id`

// GetStorageVolumeSnapshots lists a volume's snapshots, oldest first.
func (tx *Tx) GetStorageVolumeSnapshots(ctx context.Context, pool, volume string) ([]StorageVolumeSnapshot, error) {
	_, err := tx.GetStorageVolume(ctx, pool, volume)
	if err != nil {
		return nil, err
	}

	return tx.queryVolumeSnapshots(ctx, pool, volume, nil)
}

// GetStorageVolumeSnapshot returns one snapshot, or a 404 StatusError.
func (tx *Tx) GetStorageVolumeSnapshot(ctx context.Context, pool, volume, name string) (*StorageVolumeSnapshot, error) {
	snaps, err := tx.queryVolumeSnapshots(ctx, pool, volume, &name)
	if err != nil {
		return nil, err
	}

	if len(snaps) == 0 {
		return nil, notFound("storage volume snapshot", volume+"/"+name)
	}

	return &snaps[0], nil
}

func (tx *Tx) queryVolumeSnapshots(ctx context.Context, pool, volume string, name *string) ([]StorageVolumeSnapshot, error) {
	rows, err := tx.tx.QueryContext(ctx, volumeSnapshotsSelect, pool, volume, name)
	if err != nil {
		return nil, fmt.Errorf("querying storage volume snapshots: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := []StorageVolumeSnapshot{}
	for rows.Next() {
		var s StorageVolumeSnapshot
		var config string
		err := rows.Scan(&s.ID, &s.Pool, &s.Volume, &s.Name, &s.Description, &config, dbTime{&s.CreatedAt}, dbTime{&s.ExpiresAt})
		if err != nil {
			return nil, fmt.Errorf("scanning storage volume snapshot: %w", err)
		}

		err = json.Unmarshal([]byte(config), &s.Config)
		if err != nil {
			return nil, fmt.Errorf("decoding storage volume snapshot %s: %w", s.Name, err)
		}

		s.Config = orEmpty(s.Config)
		out = append(out, s)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading storage volume snapshots: %w", err)
	}

	return out, nil
}

// CreateStorageVolumeSnapshot inserts a snapshot of a volume: 409 when the name is taken.
func (tx *Tx) CreateStorageVolumeSnapshot(ctx context.Context, s StorageVolumeSnapshot) error {
	v, err := tx.GetStorageVolume(ctx, s.Pool, s.Volume)
	if err != nil {
		return err
	}

	config, err := json.Marshal(orEmpty(s.Config))
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `INSERT INTO storage_volumes_snapshots (storage_volume_id, name, description, config, creation_date, expiry_date) VALUES (?, ?, ?, ?, ?, ?)`,
		v.ID, s.Name, s.Description, string(config), timeToDB(s.CreatedAt), timeToDB(s.ExpiresAt))
	if isUnique(err) {
		return alreadyExists("storage volume snapshot", s.Volume+"/"+s.Name)
	}

	if err != nil {
		return fmt.Errorf("inserting storage volume snapshot %s: %w", s.Name, err)
	}

	return nil
}

// UpdateStorageVolumeSnapshot sets a snapshot's description and expiry.
func (tx *Tx) UpdateStorageVolumeSnapshot(ctx context.Context, s StorageVolumeSnapshot) error {
	cur, err := tx.GetStorageVolumeSnapshot(ctx, s.Pool, s.Volume, s.Name)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "storage volume snapshot", s.Name, `UPDATE storage_volumes_snapshots SET description = ?, expiry_date = ? WHERE id = ?`,
		s.Description, timeToDB(s.ExpiresAt), cur.ID)
}

// RenameStorageVolumeSnapshot renames a snapshot: 409 when the name is taken.
func (tx *Tx) RenameStorageVolumeSnapshot(ctx context.Context, pool, volume, name, newName string) error {
	cur, err := tx.GetStorageVolumeSnapshot(ctx, pool, volume, name)
	if err != nil {
		return err
	}

	err = tx.execOne(ctx, "storage volume snapshot", name, `UPDATE storage_volumes_snapshots SET name = ? WHERE id = ?`, newName, cur.ID)
	if isUnique(err) {
		return alreadyExists("storage volume snapshot", volume+"/"+newName)
	}

	return err
}

// DeleteStorageVolumeSnapshot deletes one snapshot row.
func (tx *Tx) DeleteStorageVolumeSnapshot(ctx context.Context, pool, volume, name string) error {
	cur, err := tx.GetStorageVolumeSnapshot(ctx, pool, volume, name)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "storage volume snapshot", name, `DELETE FROM storage_volumes_snapshots WHERE id = ?`, cur.ID)
}
