package client_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// lxdToken was printed by `lxc config trust add --name y -q` of Debian's LXD
// 5.0.2 on this project's test machine.
const lxdToken = "eyJjbGllbnRfbmFtZSI6InkiLCJmaW5nZXJwcmludCI6IjA2ZjRmMTZmN2I4OWFiY2ZmNDg3MjgzNzQyNGVlMzk2M2EwMTc0MWZjZmI3NTAwMDc2NjNjOTE3NTNiZTlkN2YiLCJhZGRyZXNzZXMiOlsiMTI3LjAuMC4xOjE4NDQzIl0sInNlY3JldCI6ImY0ZmNjYjBiNTNmYmQ0Zjk4YjJkZTk5MDM0ZTAzYTYyMjVkZDE2ZDVmODE4MzlmZDYyYTczNDNkMTVhODQ0OWUiLCJleHBpcmVzX2F0IjoiMDAwMS0wMS0wMVQwMDowMDowMFoifQ=="

func TestDecodeLXDToken(t *testing.T) {
	tok, err := client.DecodeToken(lxdToken)
	if err != nil {
		t.Fatal(err)
	}

	if tok.ClientName != "y" || tok.Fingerprint != "06f4f16f7b89abcff4872837424ee3963a01741fcfb750007663c91753be9d7f" ||
		len(tok.Addresses) != 1 || tok.Addresses[0] != "127.0.0.1:18443" || !strings.HasPrefix(tok.Secret, "f4fccb0b") || !tok.ExpiresAt.IsZero() {
		t.Errorf("decoded %+v", tok)
	}

	// Encoding gives back the same text: the 5.0 client builds tokens so.
	text, err := client.EncodeToken(*tok)
	if err != nil || text != lxdToken {
		t.Errorf("re-encoded %q, %v", text, err)
	}
}

func TestDecodeTokenRefuses(t *testing.T) {
	good := api.CertificateAddToken{ClientName: "c", Fingerprint: strings.Repeat("ab", 32), Addresses: []string{"192.0.2.1:8443"}, Secret: "s"}
	enc := func(change func(*api.CertificateAddToken)) string {
		tok := good
		tok.Addresses = append([]string(nil), good.Addresses...)
		change(&tok)
		s, err := client.EncodeToken(tok)
		if err != nil {
			t.Fatal(err)
		}

		return s
	}

	if _, err := client.DecodeToken(enc(func(*api.CertificateAddToken) {})); err != nil {
		t.Fatalf("the good token: %v", err)
	}

	cases := map[string]string{
		"not base64":       "https://example.com",
		"not json":         base64.StdEncoding.EncodeToString([]byte("hello")),
		"short fp":         enc(func(t *api.CertificateAddToken) { t.Fingerprint = "abcd" }),
		"upper fp":         enc(func(t *api.CertificateAddToken) { t.Fingerprint = strings.Repeat("AB", 32) }),
		"no secret":        enc(func(t *api.CertificateAddToken) { t.Secret = "" }),
		"no address":       enc(func(t *api.CertificateAddToken) { t.Addresses = nil }),
		"address no port":  enc(func(t *api.CertificateAddToken) { t.Addresses = []string{"192.0.2.1"} }),
		"too many address": enc(func(t *api.CertificateAddToken) { t.Addresses = make([]string, 65) }),
		"expired":          enc(func(t *api.CertificateAddToken) { t.ExpiresAt = time.Now().Add(-time.Minute) }),
		"too long":         strings.Repeat("A", 20000),
	}

	for name, s := range cases {
		_, err := client.DecodeToken(s)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// Not yet expired is fine.
	if _, err := client.DecodeToken(enc(func(t *api.CertificateAddToken) { t.ExpiresAt = time.Now().Add(time.Hour) })); err != nil {
		t.Errorf("unexpired token: %v", err)
	}
}

// The token printed by `config trust add` is rebuilt from the operation's
// metadata, as LXD 5.0.2 returned it.
func TestTokenFromOperation(t *testing.T) {
	op := api.Operation{ID: "x", Class: api.OperationClassToken, Metadata: map[string]any{
		"addresses":   []any{"127.0.0.1:18443"},
		"fingerprint": "06f4f16f7b89abcff4872837424ee3963a01741fcfb750007663c91753be9d7f",
		"request":     map[string]any{"name": "y", "type": "client", "token": true},
		"secret":      "f4fccb0b53fbd4f98b2de99034e03a6225dd16d5f81839fd62a7343d15a8449e",
	}}

	name, tok, err := client.TokenFromOperation(op)
	if err != nil || name != "y" {
		t.Fatalf("name %q, err %v", name, err)
	}

	text, err := client.EncodeToken(tok)
	if err != nil || text != lxdToken {
		t.Errorf("token %q, %v; want LXD's", text, err)
	}

	op.Class = api.OperationClassTask
	if _, _, err := client.TokenFromOperation(op); err == nil {
		t.Error("a task operation gave a token")
	}
}

func TestNormalizeURL(t *testing.T) {
	good := map[string]string{
		"host":                  "https://host:8443",
		"host:9443":             "https://host:9443",
		"192.0.2.1":             "https://192.0.2.1:8443",
		"https://192.0.2.1/":    "https://192.0.2.1:8443",
		"[2001:db8::1]:8443":    "https://[2001:db8::1]:8443",
		"https://[2001:db8::1]": "https://[2001:db8::1]:8443",
	}

	for in, want := range good {
		got, err := client.NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}

	for _, bad := range []string{"http://host", "https://", "https://u:p@host", "https://host/path", "https://host?x=1", "ftp://host"} {
		if got, err := client.NormalizeURL(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}
