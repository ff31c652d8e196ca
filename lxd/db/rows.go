package db

import (
	"context"
	"fmt"
	"time"
)

// Helpers shared by the entity files: timestamps, key/value config tables and
// device tables. Each takes its SQL from the caller so the statements stay next
// to the entity that owns them.

// timeToDB stores t as UTC RFC 3339 text; the zero time is stored as NULL.
func timeToDB(t time.Time) any {
	if t.IsZero() {
		return nil
	}

	return t.UTC().Format(time.RFC3339Nano)
}

// dbTime scans a column written by timeToDB. NULL reads back as the zero time.
type dbTime struct {
	t *time.Time
}

func (d dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.t = time.Time{}
	case time.Time:
		*d.t = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("scanning time from %T", v)
	}

	return nil
}

func (d dbTime) parse(s string) error {
	if s == "" {
		*d.t = time.Time{}
		return nil
	}

	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("parsing time %q: %w", s, err)
	}

	*d.t = t.UTC()

	return nil
}

// insertConfig inserts each key of config for owner. stmt takes (owner, key, value).
func (tx *Tx) insertConfig(ctx context.Context, stmt string, owner int64, config map[string]string) error {
	if len(config) == 0 {
		return nil
	}

	prep, err := tx.tx.PrepareContext(ctx, stmt)
	if err != nil {
		return fmt.Errorf("preparing config insert: %w", err)
	}

	defer func() { _ = prep.Close() }()

	for k, v := range config {
		_, err := prep.ExecContext(ctx, owner, k, v)
		if err != nil {
			return fmt.Errorf("inserting config key %q: %w", k, err)
		}
	}

	return nil
}

// deleteConfigKeys removes keys for owner. stmt takes (owner, key).
func (tx *Tx) deleteConfigKeys(ctx context.Context, stmt string, owner int64, keys []string) error {
	for _, k := range keys {
		_, err := tx.tx.ExecContext(ctx, stmt, owner, k)
		if err != nil {
			return fmt.Errorf("deleting config key %q: %w", k, err)
		}
	}

	return nil
}

// loadConfig runs query, which yields (owner, key, value), and groups rows by owner.
func (tx *Tx) loadConfig(ctx context.Context, query string, args ...any) (map[int64]map[string]string, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying config: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := map[int64]map[string]string{}
	for rows.Next() {
		var owner int64
		var k, v string
		err := rows.Scan(&owner, &k, &v)
		if err != nil {
			return nil, fmt.Errorf("scanning config: %w", err)
		}

		m := out[owner]
		if m == nil {
			m = map[string]string{}
			out[owner] = m
		}

		m[k] = v
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}

	return out, nil
}

// deviceStmts names the two statements behind a devices table and its config table.
type deviceStmts struct {
	device string // takes (owner, name, type)
	config string // takes (device id, key, value)
}

// insertDevices stores devices for owner. The "type" key lives in the devices
// table itself; every other key goes to the config table.
func (tx *Tx) insertDevices(ctx context.Context, stmts deviceStmts, owner int64, devices map[string]map[string]string) error {
	for name, dev := range devices {
		res, err := tx.tx.ExecContext(ctx, stmts.device, owner, name, dev["type"])
		if err != nil {
			return fmt.Errorf("inserting device %q: %w", name, err)
		}

		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("inserting device %q: %w", name, err)
		}

		config := make(map[string]string, len(dev))
		for k, v := range dev {
			if k != "type" {
				config[k] = v
			}
		}

		err = tx.insertConfig(ctx, stmts.config, id, config)
		if err != nil {
			return fmt.Errorf("inserting device %q: %w", name, err)
		}
	}

	return nil
}

// loadDevices runs query, which yields (owner, device name, type, key, value) with
// key and value NULL for a device without config, and groups rows by owner.
func (tx *Tx) loadDevices(ctx context.Context, query string, args ...any) (map[int64]map[string]map[string]string, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying devices: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := map[int64]map[string]map[string]string{}
	for rows.Next() {
		var owner int64
		var name, typ string
		var k, v *string
		err := rows.Scan(&owner, &name, &typ, &k, &v)
		if err != nil {
			return nil, fmt.Errorf("scanning devices: %w", err)
		}

		devices := out[owner]
		if devices == nil {
			devices = map[string]map[string]string{}
			out[owner] = devices
		}

		dev := devices[name]
		if dev == nil {
			dev = map[string]string{}
			if typ != "" {
				dev["type"] = typ
			}

			devices[name] = dev
		}

		if k != nil && v != nil {
			dev[*k] = *v
		}
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading devices: %w", err)
	}

	return out, nil
}

// orEmpty returns m, or an empty map when m is nil, so row types keep "never nil".
func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}

	return m
}

// execEach runs each statement with the same arguments.
func (tx *Tx) execEach(ctx context.Context, stmts []string, args ...any) error {
	for _, stmt := range stmts {
		_, err := tx.tx.ExecContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
	}

	return nil
}

// execOne runs stmt, which must touch the one row named name: none is a 404.
func (tx *Tx) execOne(ctx context.Context, kind, name, stmt string, args ...any) error {
	res, err := tx.tx.ExecContext(ctx, stmt, args...)
	if err != nil {
		return fmt.Errorf("writing %s %q: %w", kind, name, err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("writing %s %q: %w", kind, name, err)
	}

	if n == 0 {
		return notFound(kind, name)
	}

	return nil
}

// rename runs stmt, taking (new, old): 404 if old is missing, 409 if new is taken.
func (tx *Tx) rename(ctx context.Context, kind, stmt, oldName, newName string) error {
	res, err := tx.tx.ExecContext(ctx, stmt, newName, oldName)
	if isUnique(err) {
		return alreadyExists(kind, newName)
	}

	if err != nil {
		return fmt.Errorf("renaming %s %q to %q: %w", kind, oldName, newName, err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("renaming %s %q to %q: %w", kind, oldName, newName, err)
	}

	if n == 0 {
		return notFound(kind, oldName)
	}

	return nil
}
