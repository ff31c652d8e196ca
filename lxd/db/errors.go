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

// ErrUnavailable marks an error of the cluster database that is not the request's
// fault: no leader, quorum lost, the leader unreachable within the deadline. The API
// answers it 503 "cluster database unavailable: ...", at once, instead of hanging or
// calling it an internal error.
var ErrUnavailable = errors.New("cluster database unavailable")

// unavailableError is ErrUnavailable with its cause; as an api.StatusError it is a 503.
type unavailableError struct{ err error }

func (e unavailableError) Error() string {
	msg := e.err.Error()
	if strings.HasPrefix(msg, ErrUnavailable.Error()) {
		return msg // the gateway's own errors already say so
	}

	return ErrUnavailable.Error() + ": " + msg
}

func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// unavailableMessages are what go-dqlite and our gateway say when the database has no
// leader or lost it (the gateway's ErrNoLeader, go-dqlite's driver errors): lxd/db does
// not import go-dqlite, so it knows them by text.
var unavailableMessages = []string{
	"cluster database unavailable",
	"no available dqlite leader",
	"leadership lost",
	"not leader",
	"failed to establish network connection",
	"bad connection",
}

// unavailable turns an error of a transaction that the database layer itself gave up on
// into a 503: a deadline that expired inside the layer (the caller's own context is
// still live: the cluster DB's per-call deadlines, issue 16), or a no-leader error. An
// expired or cancelled caller context, and every error of a healthy database (SQL,
// constraints, 404s), are left as they are.
func unavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnavailable) || api.StatusCodeOf(err) != 0 {
		return err
	}

	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return api.NewStatusError(http.StatusServiceUnavailable, unavailableError{err})
	}

	msg := err.Error()
	for _, s := range unavailableMessages {
		if strings.Contains(msg, s) {
			return api.NewStatusError(http.StatusServiceUnavailable, unavailableError{err})
		}
	}

	return err
}
