package ws

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
)

// NewSecret returns a random stream secret: 64 hex characters, as LXD uses.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// SecretMatches compares a secret given by a client with an expected one in
// constant time. Empty secrets never match.
func SecretMatches(given, want string) bool {
	if given == "" || want == "" {
		return false
	}

	return subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}
