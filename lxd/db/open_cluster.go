package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// ClusterOption configures OpenCluster.
type ClusterOption func(*DB)

// WithTransient adds a classifier of the cluster driver's errors that are worth
// retrying the transaction for (the gateway's IsTransient): lxd/db does not import
// the dqlite driver.
func WithTransient(f func(error) bool) ClusterOption {
	return func(db *DB) { db.transient = f }
}

// ensureTimeout bounds the schema updates at open: other members may be applying
// them at the same moment, which shows as busy errors to retry.
const ensureTimeout = time.Minute

// OpenCluster returns the inventory over the global dqlite database (the gateway's
// handle) and brings its schema up to date with the same updates as Open. Reads and
// writes both go through sqlDB; write transactions of this process queue on a
// semaphore, as they queue on the single writer connection of the file database.
func OpenCluster(ctx context.Context, sqlDB *sql.DB, opts ...ClusterOption) (*DB, error) {
	if sqlDB == nil {
		return nil, errors.New("opening cluster database: no handle")
	}

	db := &DB{write: sqlDB, read: sqlDB, cluster: true, writeSem: make(chan struct{}, 1)}
	for _, o := range opts {
		o(db)
	}

	err := db.ensureSchema(ctx, sqlDB)
	if err != nil {
		return nil, err
	}

	return db, nil
}

// ensureSchema runs schema.Ensure, retrying transient errors until ensureTimeout.
func (db *DB) ensureSchema(ctx context.Context, sqlDB *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, ensureTimeout)
	defer cancel()

	for attempt := 1; ; attempt++ {
		_, err := schema.Ensure(ctx, sqlDB, updates)
		if err == nil {
			return nil
		}

		if !db.isTransient(err) {
			return fmt.Errorf("updating schema of the cluster database: %w", err)
		}

		select {
		case <-ctx.Done():
			return db.unavailable(fmt.Errorf("updating schema of the cluster database: %w", err))
		case <-time.After(backoff(attempt)):
		}
	}
}
