package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// pairPEM makes a self-signed certificate for key, valid from nb to na.
func pairPEM(t *testing.T, key crypto.Signer, nb, na time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test"}, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}

	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func ecKey(t *testing.T, c elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	return k
}

func validPair(t *testing.T) (certPEM, keyPEM []byte) {
	now := time.Now()
	return pairPEM(t, ecKey(t, elliptic.P384()), now.Add(-time.Minute), now.Add(time.Hour))
}

func TestParseClusterCert(t *testing.T) {
	now := time.Now()
	good, goodKey := validPair(t)
	_, otherKey := validPair(t)
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	weakCert, weakKey := pairPEM(t, rsaSmall, now.Add(-time.Minute), now.Add(time.Hour))
	p224Cert, p224Key := pairPEM(t, ecKey(t, elliptic.P224()), now.Add(-time.Minute), now.Add(time.Hour))
	oldCert, oldKey := pairPEM(t, ecKey(t, elliptic.P256()), now.Add(-2*time.Hour), now.Add(-time.Hour))
	edCert, edKeyPEM := pairPEM(t, edKey, now.Add(-time.Minute), now.Add(time.Hour))

	c, err := ParseClusterCert(good, goodKey, now)
	if err != nil || c.Fingerprint == "" {
		t.Fatalf("a good P-384 pair: %v", err)
	}

	_, err = ParseClusterCert(edCert, edKeyPEM, now)
	if err != nil {
		t.Errorf("an Ed25519 pair: %v", err)
	}

	bad := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"empty", nil, nil, "both"},
		{"garbage", []byte("not a cert"), []byte("not a key"), "PEM CERTIFICATE"},
		{"key for another certificate", good, otherKey, "does not match"},
		{"key as certificate", goodKey, good, "PEM CERTIFICATE"},
		{"a chain", append(slices.Clone(good), good...), goodKey, "single certificate"},
		{"RSA 1024", weakCert, weakKey, "too weak"},
		{"P-224", p224Cert, p224Key, "too weak"},
		{"expired", oldCert, oldKey, "expired"},
		{"huge", append(slices.Clone(good), make([]byte, 70<<10)...), goodKey, "at most"},
		{"garbage key", good, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "does not match"},
	}
	for _, b := range bad {
		_, err := ParseClusterCert(b.cert, b.key, now)
		if err == nil || api.StatusCodeOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want a 400 mentioning %q", b.name, err, b.want)
		}
	}
}

// A swap on one member: prepared, both certificates are accepted and the old one
// presented; committed, the new one is written and presented, both accepted; finished,
// only the new one. A garbage pair is refused and changes nothing; a second swap while
// one is prepared is a 409.
func TestCertSwap(t *testing.T) {
	dir := t.TempDir()
	oldCert, oldKey := validPair(t)
	err := listener.WriteCertFiles(dir, listener.ClusterCertFile, listener.ClusterKeyFile, oldCert, oldKey)
	if err != nil {
		t.Fatal(err)
	}

	cur, err := listener.ParseCert(oldCert, oldKey)
	if err != nil {
		t.Fatal(err)
	}

	s := &Service{dir: dir, log: slog.Default(), enabled: true, cert: cur}
	var seen [][]string
	s.OnCertChange(func(fps []string) { seen = append(seen, fps) })

	err = s.PrepareCert([]byte("garbage"), []byte("garbage"))
	if api.StatusCodeOf(err) != http.StatusBadRequest || len(s.MemberFingerprints()) != 1 || len(seen) != 0 {
		t.Fatalf("garbage prepare: %v, accepted %v", err, s.MemberFingerprints())
	}

	newCert, newKey := validPair(t)
	next, _ := listener.ParseCert(newCert, newKey)
	err = s.PrepareCert(newCert, newKey)
	if err != nil {
		t.Fatal(err)
	}

	fps := s.MemberFingerprints()
	if !slices.Equal(fps, []string{cur.Fingerprint, next.Fingerprint}) || s.Cert().Fingerprint != cur.Fingerprint {
		t.Errorf("prepared: accepted %v, presented %s", fps, s.Cert().Fingerprint)
	}

	thirdCert, thirdKey := validPair(t)
	err = s.PrepareCert(thirdCert, thirdKey)
	if api.StatusCodeOf(err) != http.StatusConflict {
		t.Errorf("a second swap while one is prepared: %v, want 409", err)
	}

	err = s.CommitCert("0000")
	if api.StatusCodeOf(err) != http.StatusConflict {
		t.Errorf("committing what was not prepared: %v, want 409", err)
	}

	err = s.CommitCert(next.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}

	onDisk, err := os.ReadFile(filepath.Join(dir, listener.ClusterCertFile))
	if err != nil || string(onDisk) != next.PEM || s.Cert().Fingerprint != next.Fingerprint {
		t.Errorf("committed: presented %s, cluster.crt %v", s.Cert().Fingerprint, err)
	}

	if fps := s.MemberFingerprints(); !slices.Contains(fps, cur.Fingerprint) || !slices.Contains(fps, next.Fingerprint) {
		t.Errorf("committed: accepted %v, want both", fps)
	}

	err = s.FinishCert(next.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}

	if fps := s.MemberFingerprints(); !slices.Equal(fps, []string{next.Fingerprint}) {
		t.Errorf("finished: accepted %v, want only the new one", fps)
	}

	if len(seen) != 3 || !slices.Equal(seen[len(seen)-1], []string{next.Fingerprint}) {
		t.Errorf("the daemon was told %v", seen)
	}

	// The client side pins what is accepted now.
	cfg := s.ClientTLS()
	oldLeaf, _ := pem.Decode(oldCert)
	if cfg.VerifyPeerCertificate([][]byte{oldLeaf.Bytes}, nil) == nil {
		t.Error("after the swap a member call still accepts a server presenting the old certificate")
	}

	if cfg.VerifyPeerCertificate([][]byte{next.KeyPair.Certificate[0]}, nil) != nil {
		t.Error("after the swap a member call refuses the new certificate")
	}
}

// A prepared certificate whose swap is abandoned (the driving member died, or its abort
// never arrived) is accepted from peers no longer than abandonedPrepare: a pair that was
// reported "nothing changed" must not stay a member's certificate.
func TestCertSwapAbandonedPrepareExpires(t *testing.T) {
	defer func(d time.Duration) { abandonedPrepare = d }(abandonedPrepare)
	abandonedPrepare = 200 * time.Millisecond

	dir := t.TempDir()
	oldCert, oldKey := validPair(t)
	cur, err := listener.ParseCert(oldCert, oldKey)
	if err != nil {
		t.Fatal(err)
	}

	s := &Service{dir: dir, log: slog.Default(), enabled: true, cert: cur}
	var told []string
	var mu sync.Mutex
	s.OnCertChange(func(fps []string) { mu.Lock(); told = fps; mu.Unlock() })
	newCert, newKey := validPair(t)
	next, _ := listener.ParseCert(newCert, newKey)
	err = s.PrepareCert(newCert, newKey)
	if err != nil {
		t.Fatal(err)
	}

	if !slices.Contains(s.MemberFingerprints(), next.Fingerprint) {
		t.Fatalf("prepared: accepted %v", s.MemberFingerprints())
	}

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && slices.Contains(s.MemberFingerprints(), next.Fingerprint) {
		time.Sleep(50 * time.Millisecond)
	}

	if fps := s.MemberFingerprints(); !slices.Equal(fps, []string{cur.Fingerprint}) {
		t.Fatalf("an abandoned prepare is still accepted from members: %v", fps)
	}

	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(told, []string{cur.Fingerprint}) {
		t.Errorf("the daemon's trust store was told %v, want only the cluster certificate", told)
	}

	if s.CommitCert(next.Fingerprint) == nil || s.Cert().Fingerprint != cur.Fingerprint {
		t.Error("an expired prepare could still be committed")
	}
}
