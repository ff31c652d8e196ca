package db

import (
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
