package cluster

import (
	"context"
	"database/sql"
	"fmt"
)

// Server configuration keys that are each member's own: its listeners' addresses.
// On a clustered member they live in local.db (the global node_config table is shared
// by every member, so storing them there made members overwrite each other's
// addresses); every other server key stays global.
var localConfigKeys = map[string]bool{
	"core.https_address":    true,
	"core.metrics_address":  true,
	"cluster.https_address": true,
}

// IsLocalConfigKey says whether key is member-local on a clustered member.
func IsLocalConfigKey(key string) bool { return localConfigKeys[key] }

const localConfigSchema = `
CREATE TABLE IF NOT EXISTS config (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
)`

// seedLocalConfig creates the member's config table; a member that has none yet (its
// first clustered start) gets its cluster address as cluster.https_address and
// core.https_address: the address it serves its API at.
func seedLocalConfig(ctx context.Context, conn *sql.DB, l local) error {
	_, err := conn.ExecContext(ctx, localConfigSchema)
	if err != nil {
		return fmt.Errorf("creating local.db config table: %w", err)
	}

	var n int
	err = conn.QueryRowContext(ctx, `SELECT count(*) FROM config`).Scan(&n)
	if err != nil {
		return fmt.Errorf("reading local.db config: %w", err)
	}

	if n > 0 || l.Address == "" {
		return nil
	}

	_, err = conn.ExecContext(ctx, `INSERT INTO config (key, value) VALUES ('cluster.https_address', ?), ('core.https_address', ?)`,
		l.Address, l.Address)
	if err != nil {
		return fmt.Errorf("seeding local.db config: %w", err)
	}

	return nil
}

// LocalConfig is this member's own server configuration (the keys IsLocalConfigKey
// names); nil on a host that is not clustered.
func (s *Service) LocalConfig(ctx context.Context) (map[string]string, error) {
	if s == nil {
		return nil, nil
	}

	s.mu.RLock()
	conn, enabled := s.localDB, s.enabled
	s.mu.RUnlock()
	if !enabled || conn == nil {
		return nil, nil
	}

	rows, err := conn.QueryContext(ctx, `SELECT key, value FROM config`)
	if err != nil {
		return nil, fmt.Errorf("reading local.db config: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		err = rows.Scan(&k, &v)
		if err != nil {
			return nil, fmt.Errorf("reading local.db config: %w", err)
		}

		out[k] = v
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading local.db config: %w", err)
	}

	return out, nil
}

// UpdateLocalConfig stores set and removes unset in this member's own configuration,
// in one transaction. Only member-local keys; only on a clustered member.
func (s *Service) UpdateLocalConfig(ctx context.Context, set map[string]string, unset []string) error {
	if s == nil {
		return fmt.Errorf("not clustered")
	}

	s.mu.RLock()
	conn, enabled := s.localDB, s.enabled
	s.mu.RUnlock()
	if !enabled || conn == nil {
		return fmt.Errorf("not clustered")
	}

	for k := range set {
		if !IsLocalConfigKey(k) {
			return fmt.Errorf("server config key %q is not member-local", k)
		}
	}

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("writing local.db config: %w", err)
	}

	defer func() { _ = tx.Rollback() }()
	for _, k := range unset {
		_, err = tx.ExecContext(ctx, `DELETE FROM config WHERE key = ?`, k)
		if err != nil {
			return fmt.Errorf("writing local.db config: %w", err)
		}
	}

	for k, v := range set {
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)`, k, v)
		if err != nil {
			return fmt.Errorf("writing local.db config: %w", err)
		}
	}

	err = tx.Commit()
	if err != nil {
		return fmt.Errorf("writing local.db config: %w", err)
	}

	return nil
}
