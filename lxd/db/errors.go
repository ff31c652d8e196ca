package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// notFound is the error for a missing row; kind is e.g. "instance".
func notFound(kind, name string) error {
	return api.StatusErrorf(http.StatusNotFound, "%s %q not found", kind, name)
}

// alreadyExists is the error for a UNIQUE name conflict.
func alreadyExists(kind, name string) error {
	return api.StatusErrorf(http.StatusConflict, "%s %q already exists", kind, name)
}

// lookupID runs a query selecting one row's id by its key and turns "no rows" into a 404
// naming kind and key.
func (tx *Tx) lookupID(ctx context.Context, query, kind, key string) (int64, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx, query, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound(kind, key)
	}

	if err != nil {
		return 0, fmt.Errorf("looking up %s %q: %w", kind, key, err)
	}

	return id, nil
}

// unavailableMessages are what go-dqlite and our gateway say when the database has no
// leader or cannot reach it: lxd/db does not import go-dqlite, so it knows them by text.
var unavailableMessages = []string{
	"cluster database unavailable",
	"no available dqlite leader",
	"leadership lost",
	"not leader",
	"failed to establish network connection",
	"bad connection",
}

// lostDatabase makes a 503 (db.unavailable) of a cluster transaction's error that the
// retry loop did not take for transient but that still says the database could not be
// reached: a deadline that expired inside the layer while the caller's own context is
// live (the driver's per-attempt deadlines against a blackholed leader), a dropped
// connection, a no-leader message. The caller's own expired context, every error of a
// healthy database (SQL, constraints, 404s) and everything in file mode stay as they are.
func (db *DB) lostDatabase(ctx context.Context, err error) error {
	if !db.cluster || err == nil || ctx.Err() != nil || api.StatusCodeOf(err) != 0 {
		return err
	}

	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return db.unavailable(err)
	}

	msg := err.Error()
	for _, s := range unavailableMessages {
		if strings.Contains(msg, s) {
			return db.unavailable(err)
		}
	}

	return err
}
