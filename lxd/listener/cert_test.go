package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertGeneratedOnceWithLXDsShape(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	leaf := c.KeyPair.Leaf
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		t.Errorf("key is %T, want ECDSA P-384", leaf.PublicKey)
	}

	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("extended key usage %v, want server auth", leaf.ExtKeyUsage)
	}

	// The 5.0 client takes the first DNS name as the TLS server name.
	if len(leaf.DNSNames) == 0 {
		t.Fatal("no DNS SAN")
	}

	err = leaf.VerifyHostname(leaf.DNSNames[0])
	if err != nil {
		t.Errorf("verifying the first DNS SAN: %v", err)
	}

	err = leaf.VerifyHostname("127.0.0.1")
	if err != nil {
		t.Errorf("loopback address not in the SANs: %v", err)
	}

	if len(c.Fingerprint) != 64 || c.Fingerprint != Fingerprint(leaf.Raw) || !strings.HasPrefix(c.PEM, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("fingerprint %q, PEM %q", c.Fingerprint, c.PEM)
	}

	for _, name := range []string{CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}

		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", name, fi.Mode().Perm())
		}
	}

	again, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	if again.Fingerprint != c.Fingerprint {
		t.Error("the second start generated a new certificate")
	}
}

func TestCertFilesGuarded(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(dir, KeyFile)

	// A widened mode is tightened on load.
	err = os.Chmod(key, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	_, err = LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	fi, _ := os.Stat(key)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o after load, want 0600", fi.Mode().Perm())
	}

	// A symlink in place of the key is refused, not followed.
	elsewhere := filepath.Join(t.TempDir(), "k")
	err = os.Rename(key, elsewhere)
	if err == nil {
		err = os.Symlink(elsewhere, key)
	}

	if err != nil {
		t.Fatal(err)
	}

	_, err = LoadOrCreateCert(dir)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked key: %v, want a refusal", err)
	}

	// A certificate without its key is an error, not a silent new identity.
	_ = os.Remove(key)
	_, err = LoadOrCreateCert(dir)
	if err == nil {
		t.Error("certificate without key accepted")
	}

	// A key without its certificate (an interrupted first start) is replaced.
	_ = os.Remove(filepath.Join(dir, CertFile))
	err = os.WriteFile(key, []byte("half"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	_, err = LoadOrCreateCert(dir)
	if err != nil {
		t.Errorf("key without certificate: %v", err)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		":8443":           ":8443",
		"127.0.0.1":       "127.0.0.1:8443",
		"127.0.0.1:9000":  "127.0.0.1:9000",
		"[::1]":           "[::1]:8443",
		"::1":             "[::1]:8443",
		"[::]:8443":       "[::]:8443",
		"0.0.0.0":         "0.0.0.0:8443",
		" 10.0.0.1:0443 ": "10.0.0.1:443",
	} {
		got, err := Canonical(in, DefaultPort)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}

	for _, bad := range []string{"example.com:8443", "1.2.3.4:99999", "1.2.3.4:x", "host"} {
		_, err := Canonical(bad, DefaultPort)
		if err == nil {
			t.Errorf("Canonical(%q) accepted", bad)
		}
	}
}
