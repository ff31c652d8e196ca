package db

import (
	"context"
	"fmt"
)

// node_config holds this member's own settings (e.g. core.https_address). It is
// kept apart from the shared tables so a future cluster can replicate those alone.

// nodeConfigSelect yields a constant owner to reuse the shared config loader.
const nodeConfigSelect = `SELECT 0, key, value FROM node_config`

// GetNodeConfig returns this member's settings; never nil.
func (tx *Tx) GetNodeConfig(ctx context.Context) (map[string]string, error) {
	config, err := tx.loadConfig(ctx, nodeConfigSelect)
	if err != nil {
		return nil, fmt.Errorf("loading node config: %w", err)
	}

	return orEmpty(config[0]), nil
}

const nodeConfigUpsert = `
INSERT INTO node_config (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`

const nodeConfigDelete = `DELETE FROM node_config WHERE key = ?`

// UpdateNodeConfig removes the unset keys, then sets the set keys.
func (tx *Tx) UpdateNodeConfig(ctx context.Context, set map[string]string, unset []string) error {
	for _, k := range unset {
		_, err := tx.tx.ExecContext(ctx, nodeConfigDelete, k)
		if err != nil {
			return fmt.Errorf("unsetting node config %q: %w", k, err)
		}
	}

	for k, v := range set {
		_, err := tx.tx.ExecContext(ctx, nodeConfigUpsert, k, v)
		if err != nil {
			return fmt.Errorf("setting node config %q: %w", k, err)
		}
	}

	return nil
}
