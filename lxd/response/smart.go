package response

import (
	"database/sql"
	"errors"
	"net/http"
	"os"

	"github.com/berth-dev/berth/shared/api"
)

// SmartError is the one place where errors become HTTP statuses:
//
//   - nil → EmptySyncResponse;
//   - an api.StatusError anywhere in the chain keeps its status;
//   - os.ErrNotExist or sql.ErrNoRows → 404;
//   - os.ErrPermission → 403;
//   - anything else → 500.
//
// The message is always err's full text.
func SmartError(err error) Response {
	if err == nil {
		return EmptySyncResponse
	}

	code := api.StatusCodeOf(err)
	switch {
	case code != 0:
	case errors.Is(err, os.ErrNotExist), errors.Is(err, sql.ErrNoRows):
		code = http.StatusNotFound
	case errors.Is(err, os.ErrPermission):
		code = http.StatusForbidden
	default:
		code = http.StatusInternalServerError
	}

	return ErrorResponse(code, err.Error())
}
