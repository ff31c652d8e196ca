package trust

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// Join tokens are LXD's: a running operation of class "token" whose metadata holds
// what the 5.0 client builds a token from (secret, fingerprint, addresses, request,
// expiresAt). Redeeming one cancels it, so it works once; revoking it is
// DELETE /1.0/operations/{id}; an expiring one is cancelled when it expires.

// Operation metadata keys of a token.
const (
	metaSecret      = "secret"
	metaFingerprint = "fingerprint"
	metaAddresses   = "addresses"
	metaRequest     = "request"
	metaExpiresAt   = "expiresAt"
)

// maxTokens bounds the live tokens; maxPassword what a client may send as one.
const (
	maxTokens   = 1000
	maxPassword = 4096
)

// ErrNoToken is the refusal of a password that matches no live token.
var ErrNoToken = api.StatusErrorf(http.StatusForbidden, "no matching certificate add token: it is wrong, used, revoked or expired")

// Tokens issues and redeems join tokens.
type Tokens struct {
	ops *operations.Registry

	// mu makes finding and cancelling a token one step: two clients racing with the
	// same token cannot both win.
	mu sync.Mutex
}

// NewTokens returns a token service keeping its tokens in ops.
func NewTokens(ops *operations.Registry) *Tokens {
	return &Tokens{ops: ops}
}

// Issue creates a token for req (its name and type are what the redeemed certificate
// gets). serverFP and addresses tell the client where to go and what to expect;
// expiresAt zero never expires.
func (t *Tokens) Issue(req api.CertificatesPost, serverFP string, addresses []string, expiresAt time.Time) (*operations.Operation, error) {
	if len(addresses) == 0 {
		return nil, api.StatusErrorf(http.StatusBadRequest, "cannot issue a token: the server listens on no network address (set core.https_address)")
	}

	live := 0
	for _, op := range t.ops.List() {
		if op.Class() == api.OperationClassToken && op.Status() == api.Running {
			live++
		}
	}

	if live >= maxTokens {
		return nil, api.StatusErrorf(http.StatusServiceUnavailable, "%d tokens are waiting already: revoke some first", live)
	}

	req.Password, req.Token = "", true
	md := map[string]any{
		metaSecret:      ws.NewSecret(),
		metaFingerprint: serverFP,
		metaAddresses:   addresses,
		metaRequest:     req,
	}

	if !expiresAt.IsZero() {
		md[metaExpiresAt] = expiresAt
	}

	op, err := t.ops.Create(api.OperationClassToken, "Certificate add token", nil, md, nil, nil,
		func(*operations.Operation) error { return nil })
	if err != nil {
		return nil, err
	}

	err = op.Start()
	if err != nil {
		return nil, err
	}

	if !expiresAt.IsZero() {
		timer := time.AfterFunc(time.Until(expiresAt), func() { _ = op.Cancel() })
		go func() {
			<-op.Done()
			timer.Stop()
		}()
	}

	return op, nil
}

// Redeem consumes the token whose secret is password, or is in password as a whole
// base64 token (what `lxc remote add NAME TOKEN` sends), and returns the request it
// was issued for. Wrong, used, revoked and expired tokens get ErrNoToken.
func (t *Tokens) Redeem(password, serverFP string) (api.CertificatesPost, error) {
	if len(password) > maxPassword {
		return api.CertificatesPost{}, api.StatusErrorf(http.StatusBadRequest, "password is longer than %d bytes", maxPassword)
	}

	secret := password
	tok, err := DecodeToken(password)
	if err == nil {
		if tok.Fingerprint != "" && tok.Fingerprint != serverFP {
			return api.CertificatesPost{}, api.StatusErrorf(http.StatusForbidden, "the token is for another server (certificate %s)", short(tok.Fingerprint))
		}

		secret = tok.Secret
	}

	t.mu.Lock()
	defer t.mu.Unlock()

	// Every live token is compared, in constant time, whatever matched before.
	var found *operations.Operation
	var req api.CertificatesPost
	var expiresAt time.Time
	for _, op := range t.ops.List() {
		if op.Class() != api.OperationClassToken || op.Status() != api.Running {
			continue
		}

		md := op.Metadata()
		want, _ := md[metaSecret].(string)
		r, ok := md[metaRequest].(api.CertificatesPost)
		if ws.SecretMatches(secret, want) && ok {
			found, req = op, r
			expiresAt, _ = md[metaExpiresAt].(time.Time)
		}
	}

	if found == nil {
		return api.CertificatesPost{}, ErrNoToken
	}

	// Single use: cancelling fails when it ended meanwhile (revoked or expired).
	err = found.Cancel()
	if err != nil || (!expiresAt.IsZero() && time.Now().After(expiresAt)) {
		return api.CertificatesPost{}, ErrNoToken
	}

	return req, nil
}

// EncodeToken is the base64 token a client is given.
func EncodeToken(tok api.CertificateAddToken) string {
	data, _ := json.Marshal(tok)
	return base64.StdEncoding.EncodeToString(data)
}

// DecodeToken reads a base64 token.
func DecodeToken(s string) (api.CertificateAddToken, error) {
	var tok api.CertificateAddToken
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return tok, err
	}

	err = json.Unmarshal(data, &tok)
	if err != nil {
		return tok, err
	}

	if tok.Secret == "" {
		return tok, errors.New("token without a secret")
	}

	return tok, nil
}
