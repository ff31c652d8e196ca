package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Join tokens are LXD's: the base64 JSON of api.ClusterMemberJoinToken (the new
// member's name, the cluster certificate's fingerprint, the members' addresses, a
// random secret, the expiry). The cluster keeps only the secret's SHA-256 in
// cluster_tokens, one token per name, so every member sees and can revoke it, and any
// member can accept it, once.

// Limits on what a token may hold.
const (
	maxTokenLen   = 8 << 10
	maxAddresses  = 64
	secretBytes   = 32
	maxMemberName = 63
)

// DefaultTokenExpiry is cluster.join_token_expiry's default.
const DefaultTokenExpiry = "3H"

// EncodeToken is the token a joiner is given.
func EncodeToken(t api.ClusterMemberJoinToken) string {
	data, _ := json.Marshal(t)
	return base64.StdEncoding.EncodeToString(data)
}

// DecodeToken reads a token, refusing one without a name, fingerprint, secret or
// address.
func DecodeToken(s string) (api.ClusterMemberJoinToken, error) {
	var t api.ClusterMemberJoinToken
	s = strings.TrimSpace(s)
	if len(s) > maxTokenLen {
		return t, fmt.Errorf("join token is longer than %d bytes", maxTokenLen)
	}

	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return t, fmt.Errorf("join token is not base64: %w", err)
	}

	err = json.Unmarshal(data, &t)
	if err != nil {
		return t, fmt.Errorf("join token is not JSON: %w", err)
	}

	switch {
	case t.ServerName == "":
		return t, errors.New("join token names no server")
	case t.Secret == "":
		return t, errors.New("join token has no secret")
	case len(t.Fingerprint) != 64:
		return t, errors.New("join token has no cluster certificate fingerprint")
	case len(t.Addresses) == 0 || len(t.Addresses) > maxAddresses:
		return t, fmt.Errorf("join token must list 1 to %d member addresses", maxAddresses)
	}

	for _, a := range t.Addresses {
		err = validTokenAddress(a)
		if err != nil {
			return t, err
		}
	}

	return t, nil
}

// validTokenAddress checks that a token's member address is a plain host:port: it is
// put into the accept call's URL, where a path, query, userinfo or fragment would
// change what is called.
func validTokenAddress(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("join token address %q is not host:port: %w", a, err)
	}

	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || host == "" || strings.ContainsAny(host, "/?#@%\\ \t\r\n") {
		return fmt.Errorf("join token address %q is not host:port", a)
	}

	return nil
}

// newSecret is a token's random secret.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hashSecret is what the database keeps of a secret.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a secret given by a joiner with a stored hash in constant time.
func secretMatches(given, wantHash string) bool {
	got := hashSecret(given)
	return subtle.ConstantTimeCompare([]byte(got), []byte(wantHash)) == 1
}

// ValidMemberName checks a member name as LXD does: a host name label.
func ValidMemberName(name string) error {
	if name == "" || len(name) > maxMemberName {
		return fmt.Errorf("member name must be 1 to %d characters", maxMemberName)
	}

	if name == NoneName {
		return fmt.Errorf("member name %q is reserved", NoneName)
	}

	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (r == '-' && i > 0 && i < len(name)-1)
		if !ok {
			return fmt.Errorf("member name %q: only letters, digits and inner dashes are allowed", name)
		}
	}

	return nil
}

// IssueToken stores a join token for name, replacing the name's earlier one, and
// returns it. The member name must be free; expiresAt zero never expires.
func (s *Service) IssueToken(ctx context.Context, name string, expiresAt time.Time) (api.ClusterMemberJoinToken, error) {
	var t api.ClusterMemberJoinToken
	if !s.Enabled() {
		return t, api.StatusErrorf(http.StatusBadRequest, "this server is not clustered: enable clustering first")
	}

	err := ValidMemberName(name)
	if err != nil {
		return t, api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	members, err := s.Members(ctx)
	if err != nil {
		return t, err
	}

	var addrs []string
	for _, m := range members {
		if m.Name == name {
			return t, api.StatusErrorf(http.StatusConflict, "the cluster already has a member named %q", name)
		}

		if m.Online && m.Address != "" {
			addrs = append(addrs, m.Address)
		}
	}

	secret := newSecret()
	row := db.TokenRow{Name: name, SecretSHA256: hashSecret(secret), CreatedAt: time.Now(), ExpiresAt: expiresAt}
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.ClusterTokenPut(ctx, row)
	})
	if err != nil {
		return t, err
	}

	t = api.ClusterMemberJoinToken{ServerName: name, Fingerprint: s.Cert().Fingerprint, Addresses: addrs, Secret: secret}
	if !expiresAt.IsZero() {
		t.ExpiresAt = expiresAt.UTC().Format(time.RFC3339Nano)
	}

	return t, nil
}

// Tokens lists the pending join tokens (expired ones are left out).
func (s *Service) Tokens(ctx context.Context) ([]db.TokenRow, error) {
	if !s.Enabled() {
		return nil, nil
	}

	var rows []db.TokenRow
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.ClusterTokens(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := rows[:0]
	for _, r := range rows {
		if r.ExpiresAt.IsZero() || time.Now().Before(r.ExpiresAt) {
			out = append(out, r)
		}
	}

	return out, nil
}

// RevokeToken removes the token of name when its secret hash is hash ("" any): a
// token replaced meanwhile by a newer one for the same name stays.
func (s *Service) RevokeToken(ctx context.Context, name, hash string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.ClusterTokens(ctx)
		if err != nil {
			return err
		}

		for _, r := range rows {
			if r.Name == name && (hash == "" || r.SecretSHA256 == hash) {
				return tx.ClusterTokenDelete(ctx, name)
			}
		}

		return api.StatusErrorf(http.StatusNotFound, "no join token for %q", name)
	})
}

// HashOf is the stored form of a token's secret: operations and the database are
// matched by it.
func HashOf(secret string) string { return hashSecret(secret) }

// errTokenRefused is the answer to a wrong, used, revoked or unknown token: the same
// for each, so a guesser learns nothing.
var errTokenRefused = api.StatusErrorf(http.StatusForbidden, "join token refused: it is wrong, used, revoked or was never issued for this name")

// consumeToken checks a joiner's secret against the name's token in constant time and
// deletes the token: it works once. An expired token is deleted and refused.
func consumeToken(ctx context.Context, tx *db.Tx, name, secret string, now time.Time) error {
	rows, err := tx.ClusterTokens(ctx)
	if err != nil {
		return err
	}

	var found *db.TokenRow
	for i := range rows {
		// Every row is compared, whatever matched before.
		if secretMatches(secret, rows[i].SecretSHA256) && rows[i].Name == name {
			found = &rows[i]
		}
	}

	if found == nil {
		return errTokenRefused
	}

	if !found.ExpiresAt.IsZero() && now.After(found.ExpiresAt) {
		return errTokenExpired
	}

	return tx.ClusterTokenDelete(ctx, name)
}

var errTokenExpired = api.StatusErrorf(http.StatusForbidden, "join token refused: it has expired (cluster.join_token_expiry)")
