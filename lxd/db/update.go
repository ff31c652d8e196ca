package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/berth-dev/berth/lxd/db/schema"
)

//go:generate go test . -run TestUpdateSchema -update

// updates brings the database from version i to i+1 (index i, 0-based).
//
// Model for every entry:
//   - Append-only. A released update is never edited, reordered or removed; a
//     mistake is fixed by a new update.
//   - Self-contained. Plain SQL on tx only. Never call Tx methods, daemon code or
//     anything that follows the current schema: it may run against an older one.
//   - After adding one, run `make update-schema` (go test ./lxd/db -run
//     TestUpdateSchema -update) to regenerate schema_fresh.go, and add a test in
//     update_test.go if the update moves or seeds data.
var updates = []schema.Update{
	updateFromV0,
	updateFromV1,
	updateFromV2,
	updateFromV3,
	updateFromV4,
	updateFromV5,
	updateFromV6,
	updateFromV7,
	updateFromV8,
	updateFromV9,
	updateFromV10,
	updateFromV11,
	updateFromV12,
}

// updateFromV0 creates the initial tables. Tables shared across a future cluster
// (instances, images, profiles, networks, storage pools) are apart from node_config,
// which holds this member's own settings.
func updateFromV0(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    architecture TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    ephemeral INTEGER NOT NULL DEFAULT 0,
    stateful INTEGER NOT NULL DEFAULT 0,
    creation_date TEXT,
    last_use_date TEXT,
    UNIQUE (name)
)`, `
CREATE TABLE instances_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE,
    UNIQUE (instance_id, key)
)`, `
CREATE TABLE instances_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE,
    UNIQUE (instance_id, name)
)`, `
CREATE TABLE instances_devices_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_device_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (instance_device_id) REFERENCES instances_devices (id) ON DELETE CASCADE,
    UNIQUE (instance_device_id, key)
)`, `
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
)`, `
CREATE TABLE profiles_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (profile_id) REFERENCES profiles (id) ON DELETE CASCADE,
    UNIQUE (profile_id, key)
)`, `
CREATE TABLE profiles_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    FOREIGN KEY (profile_id) REFERENCES profiles (id) ON DELETE CASCADE,
    UNIQUE (profile_id, name)
)`, `
CREATE TABLE profiles_devices_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_device_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (profile_device_id) REFERENCES profiles_devices (id) ON DELETE CASCADE,
    UNIQUE (profile_device_id, key)
)`, `
CREATE TABLE instances_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    apply_order INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE,
    FOREIGN KEY (profile_id) REFERENCES profiles (id) ON DELETE RESTRICT,
    UNIQUE (instance_id, profile_id)
)`,
		`CREATE INDEX instances_profiles_profile_id_idx ON instances_profiles (profile_id)`, `
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    type TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    auto_update INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    creation_date TEXT,
    expiry_date TEXT,
    upload_date TEXT,
    last_use_date TEXT,
    UNIQUE (fingerprint)
)`, `
CREATE TABLE images_properties (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    image_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE CASCADE,
    UNIQUE (image_id, key)
)`, `
CREATE TABLE images_aliases (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    image_id INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE CASCADE,
    UNIQUE (name)
)`,
		`CREATE INDEX images_aliases_image_id_idx ON images_aliases (image_id)`, `
CREATE TABLE storage_pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    driver TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
)`, `
CREATE TABLE storage_pools_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    storage_pool_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (storage_pool_id) REFERENCES storage_pools (id) ON DELETE CASCADE,
    UNIQUE (storage_pool_id, key)
)`, `
CREATE TABLE networks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
)`, `
CREATE TABLE networks_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    network_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    FOREIGN KEY (network_id) REFERENCES networks (id) ON DELETE CASCADE,
    UNIQUE (network_id, key)
)`, `
CREATE TABLE node_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (key)
)`,
	}

	for _, stmt := range stmts {
		_, err := tx.ExecContext(ctx, stmt)
		if err != nil {
			return fmt.Errorf("creating initial tables: %w", err)
		}
	}

	return nil
}

// updateFromV1 seeds the default profile with a root disk on the "default" pool.
// The pool itself is created by `berth init` or the daemon, not here.
func updateFromV1(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO profiles (name, description) VALUES ('default', 'Default Berth profile')`)
	if err != nil {
		return fmt.Errorf("creating default profile: %w", err)
	}

	profileID, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("creating default profile: %w", err)
	}

	res, err = tx.ExecContext(ctx, `INSERT INTO profiles_devices (profile_id, name, type) VALUES (?, 'root', 'disk')`, profileID)
	if err != nil {
		return fmt.Errorf("creating default root device: %w", err)
	}

	deviceID, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("creating default root device: %w", err)
	}

	_, err = tx.ExecContext(ctx, `INSERT INTO profiles_devices_config (profile_device_id, key, value) VALUES (?, 'path', '/'), (?, 'pool', 'default')`, deviceID, deviceID)
	if err != nil {
		return fmt.Errorf("configuring default root device: %w", err)
	}

	return nil
}

// updateFromV2 adds instance snapshots. A snapshot keeps the instance's local config,
// devices and profiles as they were (JSON: they are only ever read and written whole).
func updateFromV2(ctx context.Context, tx *sql.Tx) error {
	stmts := []string{`
CREATE TABLE instances_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    architecture TEXT NOT NULL DEFAULT '',
    ephemeral INTEGER NOT NULL DEFAULT 0,
    stateful INTEGER NOT NULL DEFAULT 0,
    creation_date TEXT,
    expiry_date TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    devices TEXT NOT NULL DEFAULT '{}',
    profiles TEXT NOT NULL DEFAULT '[]',
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE,
    UNIQUE (instance_id, name)
)`,
	}

	for _, stmt := range stmts {
		_, err := tx.ExecContext(ctx, stmt)
		if err != nil {
			return fmt.Errorf("creating snapshot table: %w", err)
		}
	}

	return nil
}

// updateFromV3 adds the trusted certificates of HTTPS clients. projects is JSON (a
// restricted certificate's projects, read and written whole), as berthd has no projects
// table to reference.
func updateFromV3(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    certificate TEXT NOT NULL,
    restricted INTEGER NOT NULL DEFAULT 0,
    projects TEXT NOT NULL DEFAULT '[]',
    UNIQUE (fingerprint)
)`)
	if err != nil {
		return fmt.Errorf("creating certificates table: %w", err)
	}

	return nil
}

// updateFromV4 adds the warnings of host problems the daemon noticed (LXD's warnings): one
// row per type and entity, counted, with when it was first and last seen.
func updateFromV4(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE warnings (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid TEXT NOT NULL,
    type TEXT NOT NULL,
    entity TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    first_seen_date TEXT NOT NULL,
    last_seen_date TEXT NOT NULL,
    last_message TEXT NOT NULL DEFAULT '',
    UNIQUE (uuid),
    UNIQUE (type, entity)
)`)
	if err != nil {
		return fmt.Errorf("creating warnings table: %w", err)
	}

	return nil
}

// updateFromV5 adds network forwards: a host address of a network forwarded to its
// instances, ports and config kept as JSON (they are read and written whole).
func updateFromV5(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE networks_forwards (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    network_id INTEGER NOT NULL,
    listen_address TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    ports TEXT NOT NULL DEFAULT '[]',
    FOREIGN KEY (network_id) REFERENCES networks (id) ON DELETE CASCADE,
    UNIQUE (listen_address)
)`)
	if err != nil {
		return fmt.Errorf("creating networks_forwards table: %w", err)
	}

	return nil
}

// updateFromV6 adds network ACLs; rules and config are kept as JSON (read and written
// whole).
func updateFromV6(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE networks_acls (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    ingress TEXT NOT NULL DEFAULT '[]',
    egress TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}',
    UNIQUE (name)
)`)
	if err != nil {
		return fmt.Errorf("creating networks_acls table: %w", err)
	}

	return nil
}
