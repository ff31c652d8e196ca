package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Snapshot is one row of instances_snapshots: an instance's settings when the snapshot was
// taken. Instance is the owning instance's name.
type Snapshot struct {
	ID           int64
	Instance     string
	Name         string
	Description  string
	Architecture string
	Ephemeral    bool
	Stateful     bool
	CreatedAt    time.Time
	ExpiresAt    time.Time
	Config       map[string]string            // never nil
	Devices      map[string]map[string]string // never nil
	Profiles     []string                     // never nil
}

const snapshotColumns = `s.id, i.name, s.name, s.description, s.architecture, s.ephemeral, s.stateful,
s.creation_date, s.expiry_date, s.config, s.devices, s.profiles`

const snapshotsSelect = `SELECT ` + snapshotColumns + `
FROM instances_snapshots s JOIN instances i ON i.id = s.instance_id
WHERE i.name = ? ORDER BY s.creation_date, s.id`

const snapshotSelect = `SELECT ` + snapshotColumns + `
FROM instances_snapshots s JOIN instances i ON i.id = s.instance_id
WHERE i.name = ? AND s.name = ?`

// GetInstanceSnapshots lists an instance's snapshots, oldest first.
func (tx *Tx) GetInstanceSnapshots(ctx context.Context, instance string) ([]Snapshot, error) {
	_, err := tx.instanceID(ctx, instance)
	if err != nil {
		return nil, err
	}

	return tx.querySnapshots(ctx, snapshotsSelect, instance)
}

// GetAllSnapshots lists the snapshots of every instance, by instance name and oldest first
// within one: a list of full instances reads them in one query.
func (tx *Tx) GetAllSnapshots(ctx context.Context) ([]Snapshot, error) {
	return tx.querySnapshots(ctx, `SELECT `+snapshotColumns+`
FROM instances_snapshots s JOIN instances i ON i.id = s.instance_id
ORDER BY i.name, s.creation_date, s.id`)
}

// GetExpiringSnapshots lists the snapshots that have an expiry date of the instances of
// member (members.id; 0: of every member): each member prunes its own instances'.
// (The dates are compared by the caller: stored as text, they do not sort as times.)
func (tx *Tx) GetExpiringSnapshots(ctx context.Context, member int64) ([]Snapshot, error) {
	return tx.querySnapshots(ctx, `SELECT `+snapshotColumns+`
FROM instances_snapshots s JOIN instances i ON i.id = s.instance_id
WHERE s.expiry_date IS NOT NULL AND s.expiry_date != '' AND (? = 0 OR i.member_id = ?) ORDER BY s.id`, member, member)
}

// GetInstanceSnapshot returns one snapshot, or a 404 StatusError.
func (tx *Tx) GetInstanceSnapshot(ctx context.Context, instance, name string) (*Snapshot, error) {
	snaps, err := tx.querySnapshots(ctx, snapshotSelect, instance, name)
	if err != nil {
		return nil, err
	}

	if len(snaps) == 0 {
		return nil, notFound("snapshot", instance+"/"+name)
	}

	return &snaps[0], nil
}

func (tx *Tx) querySnapshots(ctx context.Context, query string, args ...any) ([]Snapshot, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying snapshots: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := []Snapshot{}
	for rows.Next() {
		var s Snapshot
		var config, devices, profiles string
		err := rows.Scan(&s.ID, &s.Instance, &s.Name, &s.Description, &s.Architecture, &s.Ephemeral, &s.Stateful,
			dbTime{&s.CreatedAt}, dbTime{&s.ExpiresAt}, &config, &devices, &profiles)
		if err != nil {
			return nil, fmt.Errorf("scanning snapshot: %w", err)
		}

		err = unmarshalSnapshotFields(&s, config, devices, profiles)
		if err != nil {
			return nil, err
		}

		out = append(out, s)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading snapshots: %w", err)
	}

	return out, nil
}

func unmarshalSnapshotFields(s *Snapshot, config, devices, profiles string) error {
	for _, f := range []struct {
		data string
		v    any
	}{{config, &s.Config}, {devices, &s.Devices}, {profiles, &s.Profiles}} {
		err := json.Unmarshal([]byte(f.data), f.v)
		if err != nil {
			return fmt.Errorf("decoding snapshot %q: %w", s.Name, err)
		}
	}

	s.Config = orEmpty(s.Config)
	s.Devices = orEmpty(s.Devices)
	if s.Profiles == nil {
		s.Profiles = []string{}
	}

	return nil
}

const snapshotInsert = `
INSERT INTO instances_snapshots (instance_id, name, description, architecture, ephemeral, stateful,
creation_date, expiry_date, config, devices, profiles)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateInstanceSnapshot inserts a snapshot of instance s.Instance: 404 if the instance is
// missing, 409 if the name is taken.
func (tx *Tx) CreateInstanceSnapshot(ctx context.Context, s Snapshot) (int64, error) {
	id, err := tx.instanceID(ctx, s.Instance)
	if err != nil {
		return 0, err
	}

	config, _ := json.Marshal(orEmpty(s.Config))
	devices, _ := json.Marshal(orEmpty(s.Devices))
	profiles := []byte("[]")
	if s.Profiles != nil {
		profiles, _ = json.Marshal(s.Profiles)
	}

	res, err := tx.tx.ExecContext(ctx, snapshotInsert, id, s.Name, s.Description, s.Architecture, s.Ephemeral, s.Stateful,
		timeToDB(s.CreatedAt), timeToDB(s.ExpiresAt), string(config), string(devices), string(profiles))
	if isUnique(err) {
		return 0, alreadyExists("snapshot", s.Instance+"/"+s.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting snapshot %q: %w", s.Name, err)
	}

	return res.LastInsertId()
}

const snapshotRename = `
UPDATE instances_snapshots SET name = ?
WHERE name = ? AND instance_id = (SELECT id FROM instances WHERE name = ?)`

// RenameInstanceSnapshot renames a snapshot: 404 if missing, 409 if the new name is taken.
func (tx *Tx) RenameInstanceSnapshot(ctx context.Context, instance, oldName, newName string) error {
	res, err := tx.tx.ExecContext(ctx, snapshotRename, newName, oldName, instance)
	if isUnique(err) {
		return alreadyExists("snapshot", instance+"/"+newName)
	}

	if err != nil {
		return fmt.Errorf("renaming snapshot %q: %w", oldName, err)
	}

	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return notFound("snapshot", instance+"/"+oldName)
	}

	return err
}

const snapshotDelete = `
DELETE FROM instances_snapshots
WHERE name = ? AND instance_id = (SELECT id FROM instances WHERE name = ?)`

// DeleteInstanceSnapshot deletes a snapshot row, or returns a 404 StatusError.
func (tx *Tx) DeleteInstanceSnapshot(ctx context.Context, instance, name string) error {
	res, err := tx.tx.ExecContext(ctx, snapshotDelete, name, instance)
	if err != nil {
		return fmt.Errorf("deleting snapshot %q: %w", name, err)
	}

	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return notFound("snapshot", instance+"/"+name)
	}

	return err
}

const snapshotExpiry = `
UPDATE instances_snapshots SET expiry_date = ?
WHERE name = ? AND instance_id = (SELECT id FROM instances WHERE name = ?)`

// UpdateInstanceSnapshotExpiry sets when a snapshot expires (zero: never), or returns a
// 404 StatusError.
func (tx *Tx) UpdateInstanceSnapshotExpiry(ctx context.Context, instance, name string, expiresAt time.Time) error {
	return tx.execOne(ctx, "snapshot", instance+"/"+name, snapshotExpiry, timeToDB(expiresAt), name, instance)
}
