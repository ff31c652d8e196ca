package response

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// EtagHash returns the hex SHA-256 of v's JSON encoding (unquoted). Pass the
// writable fields of an object so that any change to them changes the tag.
func EtagHash(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding etag source: %w", err)
	}

	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// EtagCheck compares the request's If-Match header with v's hash. A missing
// header (or "*") passes; a mismatch is a 412 StatusError.
func EtagCheck(r *http.Request, v any) error {
	match := strings.TrimSpace(r.Header.Get("If-Match"))
	if match == "" || match == "*" {
		return nil
	}

	match = strings.Trim(strings.TrimPrefix(match, "W/"), `"`)
	hash, err := EtagHash(v)
	if err != nil {
		return err
	}

	if match != hash {
		return api.StatusErrorf(http.StatusPreconditionFailed, "etag doesn't match: %s vs %s", match, hash)
	}

	return nil
}
