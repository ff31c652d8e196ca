package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"

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
