package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	// The only importer of the SQLite driver in the project: everything else goes
	// through DB and Tx, so a move to dqlite touches this package alone.
	"github.com/mattn/go-sqlite3"
)

// Tx is a transaction with typed queries, one file per entity. Obtain one only
// through DB.Transaction or DB.ReadTransaction.
type Tx struct {
	tx *sql.Tx
}

// maxAttempts bounds how often a write transaction is retried on SQLITE_BUSY/LOCKED.
const maxAttempts = 10

type writeTxKey struct{}

// ErrNestedTransaction is returned when Transaction is called from inside a write
// transaction: the single writer connection is taken, so it would deadlock.
var ErrNestedTransaction = errors.New("nested write transaction")

// Transaction runs f in a write transaction and commits if f returns nil.
//
// f is retried with a small backoff when SQLite reports the database busy or locked,
// so it must be idempotent and keep no side effects outside tx.
func (db *DB) Transaction(ctx context.Context, f func(ctx context.Context, tx *Tx) error) error {
	if ctx.Value(writeTxKey{}) != nil {
		return ErrNestedTransaction
	}

	ctx = context.WithValue(ctx, writeTxKey{}, true)

	for attempt := 1; ; attempt++ {
		err := unavailable(ctx, run(ctx, db.write, f))
		if err == nil || !isBusy(err) || attempt == maxAttempts {
			return err
		}

		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff(attempt)):
		}
	}
}

// ReadTransaction runs f in a transaction on the read-only pool. It sees one
// consistent snapshot and never waits for the writer.
func (db *DB) ReadTransaction(ctx context.Context, f func(ctx context.Context, tx *Tx) error) error {
	return unavailable(ctx, run(ctx, db.read, f))
}

func run(ctx context.Context, pool *sql.DB, f func(ctx context.Context, tx *Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}

	defer func() { _ = tx.Rollback() }()

	err = f(ctx, &Tx{tx: tx})
	if err != nil {
		return err
	}

	err = tx.Commit()
	if err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}

	return nil
}

// backoff grows from 10ms to a 250ms cap, with jitter so retries do not line up.
func backoff(attempt int) time.Duration {
	d := min(10*time.Millisecond<<(attempt-1), 250*time.Millisecond)

	return d + rand.N(d/2+1)
}

func isBusy(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}

	return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
}

func isUnique(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}

	return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}
