package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"

	// The only importer of the SQLite driver in the project: everything else goes
	// through DB and Tx. The cluster database arrives as a *sql.DB from
	// lxd/cluster/gateway (OpenCluster); its errors are told apart by SQLite code.
	"github.com/mattn/go-sqlite3"
)

// Tx is a transaction with typed queries, one file per entity. Obtain one only
// through DB.Transaction or DB.ReadTransaction.
type Tx struct {
	tx *sql.Tx
}

// maxAttempts bounds how often a transaction is retried on a transient error.
const maxAttempts = 10

// txTimeout is the deadline of every transaction whose context has none (or a later
// one), retries included: a call never hangs on the database.
const txTimeout = 10 * time.Second

// clusterRetryWindow bounds retries in cluster mode: past it a transient error (no
// leader, leadership lost, dropped connection) is returned at once, so a cluster
// that lost its quorum answers within ~1-2 s instead of hanging.
const clusterRetryWindow = time.Second

// ErrUnavailable wraps the error of a cluster transaction that kept failing
// transiently; it carries HTTP status 503.
var ErrUnavailable = errors.New("cluster database unavailable")

type writeTxKey struct{}

// ErrNestedTransaction is returned when Transaction is called from inside a write
// transaction: the single writer connection is taken, so it would deadlock.
var ErrNestedTransaction = errors.New("nested write transaction")

// Transaction runs f in a write transaction and commits if f returns nil.
//
// f is retried with a small backoff on transient errors (SQLite busy or locked; in
// cluster mode also a leader change), so it must be idempotent and keep no side
// effects outside tx.
func (db *DB) Transaction(ctx context.Context, f func(ctx context.Context, tx *Tx) error) error {
	if ctx.Value(writeTxKey{}) != nil {
		return ErrNestedTransaction
	}

	ctx = context.WithValue(ctx, writeTxKey{}, true)

	return db.lostDatabase(ctx, db.retry(ctx, func(ctx context.Context) error {
		if db.writeSem != nil {
			select {
			case db.writeSem <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("waiting for the write transaction slot: %w", ctx.Err())
			}

			defer func() { <-db.writeSem }()
		}

		return run(ctx, db.write, f)
	}))
}

// ReadTransaction runs f in a transaction on the read-only pool. It sees one
// consistent snapshot and never waits for the writer.
func (db *DB) ReadTransaction(ctx context.Context, f func(ctx context.Context, tx *Tx) error) error {
	return db.lostDatabase(ctx, db.retry(ctx, func(ctx context.Context) error {
		return run(ctx, db.read, f)
	}))
}

// retry runs attempt under the transaction deadline until it succeeds, fails for good
// or runs out of attempts (or, in cluster mode, of clusterRetryWindow).
func (db *DB) retry(ctx context.Context, attempt func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()

	start := time.Now()
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}

		if !db.isTransient(err) {
			return err
		}

		if db.giveUp(err, n, start) {
			return db.unavailable(err)
		}

		select {
		case <-ctx.Done():
			return db.unavailable(err)
		case <-time.After(backoff(n)):
		}
	}
}

// giveUp decides after attempt n failed transiently. A file database allows
// maxAttempts. A cluster allows clusterRetryWindow for a missing leader or a dropped
// connection, so a lost quorum answers fast; but a busy database (another member's
// write holds the lock) is waited for until the transaction's deadline.
func (db *DB) giveUp(err error, n int, start time.Time) bool {
	if !db.cluster {
		return n >= maxAttempts
	}

	if isBusyCode(err) {
		return n >= maxBusyAttempts
	}

	// The gateway already waited for a leader (leaderWait) or found a majority of the
	// voters unreachable: another attempt would only delay the 503.
	if judgedNoLeader(err) {
		return true
	}

	return n >= maxAttempts || time.Since(start) >= clusterRetryWindow
}

// judgedNoLeader reports the gateway's own verdict that the cluster has no leader
// (its ErrNoLeader, possibly with ErrQuorumLost), as opposed to the driver's failed
// search or a leader change, which a retry may get past.
func judgedNoLeader(err error) bool {
	return strings.Contains(err.Error(), "cluster database unavailable: no leader")
}

// maxBusyAttempts bounds retries of a busy cluster database (250 ms apart at most,
// the deadline comes first).
const maxBusyAttempts = 100

// isBusyCode reports SQLite's busy or locked from either driver.
func isBusyCode(err error) bool {
	if isBusy(err) {
		return true
	}

	var sc sqliteCoder
	if !errors.As(err, &sc) {
		return false
	}

	code := sc.SQLiteCode() & 0xff

	return code == int(sqlite3.ErrBusy) || code == int(sqlite3.ErrLocked)
}

func (db *DB) isTransient(err error) bool {
	if isBusy(err) || (db.transient != nil && db.transient(err)) {
		return true
	}

	return db.cluster && clusterTransient(err)
}

// clusterTransient is what any cluster driver's errors tell without its types: a
// connection database/sql must replace, busy/locked codes, and the messages of a
// leader change. The gateway's classifier (WithTransient) knows more.
func clusterTransient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || isBusyCode(err) {
		return true
	}

	msg := err.Error()
	for _, s := range []string{"no leader", "no available dqlite leader", "leadership lost", "not leader", "checkpoint in progress"} {
		if strings.Contains(msg, s) {
			return true
		}
	}

	return false
}

// unavailable marks a transient error that outlived its retries in cluster mode: the
// cluster database cannot be used right now (503, errors.Is ErrUnavailable).
func (db *DB) unavailable(err error) error {
	if !db.cluster {
		return err
	}

	return api.NewStatusError(http.StatusServiceUnavailable, unavailableError{err: err})
}

// unavailableError is err marked as ErrUnavailable, its message prefixed once.
type unavailableError struct{ err error }

func (e unavailableError) Error() string {
	msg := e.err.Error()
	if strings.Contains(msg, ErrUnavailable.Error()) {
		return msg
	}

	return ErrUnavailable.Error() + ": " + msg
}

func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

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
	d := min(10*time.Millisecond<<(min(attempt, 6)-1), 250*time.Millisecond)

	return d + rand.N(d/2+1)
}

func isBusy(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}

	return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
}

// sqliteCoder is an error of another SQLite driver (the cluster gateway's) that
// carries SQLite's result code.
type sqliteCoder interface {
	SQLiteCode() int
}

func isUnique(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}

	var sc sqliteCoder
	if !errors.As(err, &sc) {
		return false
	}

	switch code := sc.SQLiteCode(); code {
	case int(sqlite3.ErrConstraintUnique), int(sqlite3.ErrConstraintPrimaryKey):
		return true
	case int(sqlite3.ErrConstraint):
		// A primary code only: the message tells which constraint.
		msg := err.Error()
		return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "PRIMARY KEY constraint failed")
	default:
		return false
	}
}
