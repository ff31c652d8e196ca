// Package etag computes and checks the entity tags of API objects: the domain
// (lxd/instance) and the HTTP layer (lxd/response, handlers) share it.
package etag

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Hash returns the hex SHA-256 of v's JSON encoding (unquoted). Pass the
// writable fields of an object so that any change to them changes the tag.
func Hash(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding etag source: %w", err)
	}

	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Check compares the request's If-Match header with v's hash. A missing
// header (or "*") passes; a mismatch is a 412 StatusError.
func Check(r *http.Request, v any) error {
	return Match(r.Header.Get("If-Match"), v)
}

// Match compares an If-Match header value with v's hash, as Check does.
func Match(ifMatch string, v any) error {
	match := strings.TrimSpace(ifMatch)
	if match == "" || match == "*" {
		return nil
	}

	match = strings.Trim(strings.TrimPrefix(match, "W/"), `"`)
	hash, err := Hash(v)
	if err != nil {
		return err
	}

	if match != hash {
		return api.StatusErrorf(http.StatusPreconditionFailed, "etag doesn't match: %s vs %s", match, hash)
	}

	return nil
}
