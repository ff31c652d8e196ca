package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Limits on what a join token may carry: it comes from a command line or a
// server and is parsed before anything is trusted.
const (
	maxTokenLen       = 16 << 10
	maxTokenAddresses = 64
	maxSecretLen      = 1024
)

// DecodeToken reads a join token: base64 (standard alphabet, padding
// optional) of the JSON of api.CertificateAddToken, with a fingerprint, a
// secret and at least one HOST:PORT address. An expired token is refused.
func DecodeToken(s string) (*api.CertificateAddToken, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxTokenLen {
		return nil, fmt.Errorf("invalid token: longer than %d bytes", maxTokenLen)
	}

	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		data, err = base64.RawStdEncoding.DecodeString(s)
	}

	if err != nil {
		return nil, errors.New("invalid token: not base64")
	}

	t := api.CertificateAddToken{}
	err = json.Unmarshal(data, &t)
	if err != nil {
		return nil, fmt.Errorf("invalid token: %w", err)
	}

	switch {
	case !isFingerprint(t.Fingerprint):
		return nil, errors.New("invalid token: no valid server certificate fingerprint")
	case t.Secret == "" || len(t.Secret) > maxSecretLen:
		return nil, errors.New("invalid token: no valid secret")
	case len(t.Addresses) == 0:
		return nil, errors.New("invalid token: no server address")
	case len(t.Addresses) > maxTokenAddresses:
		return nil, fmt.Errorf("invalid token: more than %d addresses", maxTokenAddresses)
	}

	for _, a := range t.Addresses {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("invalid token: address %q is not HOST:PORT", a)
		}
	}

	if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
		return nil, fmt.Errorf("the token expired at %s", t.ExpiresAt.Local().Format(time.RFC1123))
	}

	return &t, nil
}

// EncodeToken is the token string of t, as `lxc config trust add` prints it.
func EncodeToken(t api.CertificateAddToken) (string, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return "", err
	}

	return base64.StdEncoding.EncodeToString(data), nil
}

// TokenFromOperation rebuilds the token of a token operation from its
// metadata (secret, fingerprint, addresses, request.name, expiresAt), as the
// 5.0 client does, and returns the client name it was made for.
func TokenFromOperation(op api.Operation) (string, api.CertificateAddToken, error) {
	md := op.Metadata
	t := api.CertificateAddToken{}

	if op.Class != api.OperationClassToken {
		return "", t, fmt.Errorf("operation %s is not a token", op.ID)
	}

	req, _ := md["request"].(map[string]any)
	t.ClientName, _ = req["name"].(string)
	t.Fingerprint, _ = md["fingerprint"].(string)
	t.Secret, _ = md["secret"].(string)

	addrs, _ := md["addresses"].([]any)
	for _, a := range addrs {
		s, ok := a.(string)
		if ok {
			t.Addresses = append(t.Addresses, s)
		}
	}

	if exp, ok := md["expiresAt"].(string); ok && exp != "" {
		at, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil {
			return "", t, fmt.Errorf("operation %s: invalid expiresAt %q", op.ID, exp)
		}

		t.ExpiresAt = at
	}

	if t.Secret == "" || t.Fingerprint == "" {
		return "", t, fmt.Errorf("operation %s: the token metadata lacks its secret or fingerprint", op.ID)
	}

	return t.ClientName, t, nil
}

// isFingerprint reports whether s is a SHA-256 fingerprint in lowercase hex.
func isFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}

	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}

	return true
}
