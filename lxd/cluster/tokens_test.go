package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// testMember is a clustered member "n1" over a file database (the queries are the same
// on dqlite), with its cluster certificate on disk.
func testMember(t *testing.T) *Service {
	t.Helper()
	dir := t.TempDir()
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	cert, err := listener.LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	certPEM, keyPEM, err := listener.ReadCertFiles(dir, listener.CertFile, listener.KeyFile)
	if err != nil {
		t.Fatal(err)
	}

	err = listener.WriteCertFiles(dir, listener.ClusterCertFile, listener.ClusterKeyFile, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	err = d.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		return tx.ClusterMemberSetIdentity(ctx, db.MemberRow{ID: 1, Name: "n1", Address: "127.0.0.1:8443", SchemaVersion: db.SchemaVersion()})
	})
	if err != nil {
		t.Fatal(err)
	}

	return &Service{
		dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil)), enabled: true, db: d, cert: cert,
		self: local{MemberID: 1, Name: "n1", Address: "127.0.0.1:8443"}, threshold: DefaultOfflineThreshold,
	}
}

var ours = Levels{SchemaVersion: db.SchemaVersion(), APIExtensions: 10, Arch: "x86_64"}

func accept(s *Service, name, addr, secret string) (AcceptResponse, error) {
	return s.Accept(context.Background(), AcceptRequest{
		Name: name, Address: addr, Secret: secret, SchemaVersion: ours.SchemaVersion, APIExtensions: ours.APIExtensions, Arch: "x86_64",
	}, ours)
}

func statusOf(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Status()
	}

	return 0
}

func TestTokenEncodeDecode(t *testing.T) {
	in := api.ClusterMemberJoinToken{ServerName: "n2", Fingerprint: strings.Repeat("ab", 32), Addresses: []string{"10.0.0.1:8443"}, Secret: "s3cret", ExpiresAt: "2030-01-01T00:00:00Z"}
	out, err := DecodeToken(EncodeToken(in))
	if err != nil {
		t.Fatal(err)
	}

	if out.ServerName != in.ServerName || out.Fingerprint != in.Fingerprint || out.Secret != in.Secret || out.Addresses[0] != in.Addresses[0] || out.ExpiresAt != in.ExpiresAt {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}

	bad := map[string]string{
		"not base64":     "%%%",
		"not JSON":       base64.StdEncoding.EncodeToString([]byte("nope")),
		"no secret":      EncodeToken(api.ClusterMemberJoinToken{ServerName: "n2", Fingerprint: in.Fingerprint, Addresses: in.Addresses}),
		"no fingerprint": EncodeToken(api.ClusterMemberJoinToken{ServerName: "n2", Secret: "x", Addresses: in.Addresses}),
		"no address":     EncodeToken(api.ClusterMemberJoinToken{ServerName: "n2", Secret: "x", Fingerprint: in.Fingerprint}),
		"no name":        EncodeToken(api.ClusterMemberJoinToken{Secret: "x", Fingerprint: in.Fingerprint, Addresses: in.Addresses}),
		"too long":       strings.Repeat("A", maxTokenLen+4),
	}

	for what, s := range bad {
		_, err := DecodeToken(s)
		if err == nil {
			t.Errorf("%s: decoded", what)
		}
	}
}

func TestSecretMatches(t *testing.T) {
	h := hashSecret("abc")
	if !secretMatches("abc", h) || secretMatches("abd", h) || secretMatches("", h) || secretMatches("abc", "") {
		t.Fatal("secretMatches is wrong")
	}

	a, b := newSecret(), newSecret()
	if len(a) != 2*secretBytes || a == b {
		t.Fatal("secrets are not random 256-bit values")
	}
}

func TestTokenSingleUse(t *testing.T) {
	s := testMember(t)
	ctx := context.Background()
	tok, err := s.IssueToken(ctx, "n2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	if tok.ServerName != "n2" || tok.Fingerprint != s.cert.Fingerprint || len(tok.Addresses) != 1 || tok.Addresses[0] != "127.0.0.1:8443" {
		t.Fatalf("token: %+v", tok)
	}

	// The database keeps the hash only.
	rows, err := s.Tokens(ctx)
	if err != nil || len(rows) != 1 || rows[0].SecretSHA256 != hashSecret(tok.Secret) || strings.Contains(rows[0].SecretSHA256, tok.Secret) {
		t.Fatalf("stored tokens: %+v, %v", rows, err)
	}

	// A wrong secret is refused and does not use the token up.
	_, err = accept(s, "n2", "127.0.0.2:8443", tok.Secret+"x")
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("wrong secret: %v", err)
	}

	// The right secret for another name is refused too.
	_, err = accept(s, "n3", "127.0.0.2:8443", tok.Secret)
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("other name: %v", err)
	}

	out, err := accept(s, "n2", "127.0.0.2:8443", tok.Secret)
	if err != nil {
		t.Fatal(err)
	}

	if out.MemberID != 2 || !strings.Contains(out.Certificate, "BEGIN CERTIFICATE") || !strings.Contains(out.Key, "PRIVATE KEY") || len(out.RaftPeers) != 1 {
		t.Fatalf("accept answer: id %d, peers %v", out.MemberID, out.RaftPeers)
	}

	// Used: refused, and nothing added.
	_, err = accept(s, "n2", "127.0.0.3:8443", tok.Secret)
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("reused token: %v", err)
	}

	ms, err := s.Members(ctx)
	if err != nil || len(ms) != 2 || ms[1].Name != "n2" || ms[1].Address != "127.0.0.2:8443" || !ms[1].Online {
		t.Fatalf("members: %+v, %v", ms, err)
	}

	rows, _ = s.Tokens(ctx)
	if len(rows) != 0 {
		t.Fatalf("token left after use: %+v", rows)
	}

	// A member's name cannot get a token.
	_, err = s.IssueToken(ctx, "n2", time.Time{})
	if statusOf(err) != http.StatusConflict {
		t.Fatalf("token for an existing member: %v", err)
	}
}

func TestTokenExpired(t *testing.T) {
	s := testMember(t)
	tok, err := s.IssueToken(context.Background(), "n2", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}

	_, err = accept(s, "n2", "127.0.0.2:8443", tok.Secret)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}

	rows, _ := s.Tokens(context.Background())
	if len(rows) != 0 {
		t.Fatalf("an expired token is listed: %+v", rows)
	}
}

func TestTokenReplaceAndRevoke(t *testing.T) {
	s := testMember(t)
	ctx := context.Background()
	first, err := s.IssueToken(ctx, "n2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	second, err := s.IssueToken(ctx, "n2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	rows, _ := s.Tokens(ctx)
	if len(rows) != 1 || rows[0].SecretSHA256 != hashSecret(second.Secret) {
		t.Fatalf("tokens after replace: %+v", rows)
	}

	_, err = accept(s, "n2", "127.0.0.2:8443", first.Secret)
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("replaced token: %v", err)
	}

	// Revoking by the old hash leaves the new token; by its own hash removes it.
	err = s.RevokeToken(ctx, "n2", hashSecret(first.Secret))
	if statusOf(err) != http.StatusNotFound {
		t.Fatalf("revoke of the replaced token: %v", err)
	}

	err = s.RevokeToken(ctx, "n2", hashSecret(second.Secret))
	if err != nil {
		t.Fatal(err)
	}

	_, err = accept(s, "n2", "127.0.0.2:8443", second.Secret)
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestAcceptChecks(t *testing.T) {
	s := testMember(t)
	ctx := context.Background()
	tok, err := s.IssueToken(ctx, "n2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	// Another schema: refused (only with the right secret), and the token survives.
	_, err = s.Accept(ctx, AcceptRequest{Name: "n2", Address: "127.0.0.2:8443", Secret: tok.Secret, SchemaVersion: ours.SchemaVersion + 1, APIExtensions: ours.APIExtensions}, ours)
	if statusOf(err) != http.StatusPreconditionFailed {
		t.Fatalf("other schema: %v", err)
	}

	_, err = s.Accept(ctx, AcceptRequest{Name: "n2", Address: "127.0.0.2:8443", Secret: "wrong", SchemaVersion: ours.SchemaVersion + 1}, ours)
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("wrong secret and schema: %v (the levels must not be told before the secret is checked)", err)
	}

	// n1's address: refused, and the token is still there (one transaction).
	_, err = accept(s, "n2", "127.0.0.1:8443", tok.Secret)
	if statusOf(err) != http.StatusConflict {
		t.Fatalf("taken address: %v", err)
	}

	for _, bad := range []AcceptRequest{{Name: "none", Address: "127.0.0.2:8443"}, {Name: "n 2", Address: "127.0.0.2:8443"}, {Name: "n2", Address: "::::"}} {
		bad.Secret, bad.SchemaVersion, bad.APIExtensions = tok.Secret, ours.SchemaVersion, ours.APIExtensions
		_, err = s.Accept(ctx, bad, ours)
		if statusOf(err) != http.StatusBadRequest {
			t.Fatalf("%+v: %v", bad, err)
		}
	}

	_, err = accept(s, "n2", "127.0.0.2:8443", tok.Secret)
	if err != nil {
		t.Fatalf("the token should have survived the refusals: %v", err)
	}
}

func TestNotClustered(t *testing.T) {
	dir := t.TempDir()
	// What an interrupted enable leaves: a dqlite directory and a cluster certificate.
	err := os.MkdirAll(filepath.Join(dir, "database", "global"), 0o700)
	if err != nil {
		t.Fatal(err)
	}

	err = os.WriteFile(filepath.Join(dir, listener.ClusterCertFile), []byte("x"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(context.Background(), Config{Dir: dir, Log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}

	defer s.Close()
	if s.Enabled() || s.Self().ID != 1 || s.Self().Name != NoneName || s.ClientTLS() != nil {
		t.Fatalf("unclustered: %+v", s.Self())
	}

	for _, p := range []string{filepath.Join(dir, "database", "global"), filepath.Join(dir, listener.ClusterCertFile), filepath.Join(dir, "database", db.LocalFile)} {
		_, err = os.Lstat(p)
		if !os.IsNotExist(err) {
			t.Errorf("%s: %v", p, err)
		}
	}

	_, err = s.IssueToken(context.Background(), "n2", time.Time{})
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("token on an unclustered host: %v", err)
	}
}

func TestLocalDB(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	conn, err := db.OpenLocal(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}

	_, ok, err := readLocal(ctx, conn)
	if err != nil || ok {
		t.Fatalf("empty local.db: %v %v", ok, err)
	}

	want := local{MemberID: 3, Name: "n3", Address: "10.0.0.3:8443"}
	err = writeLocal(ctx, conn, want)
	if err != nil {
		t.Fatal(err)
	}

	_ = conn.Close()

	// Open needs the cluster certificate of a member.
	_, err = Open(ctx, Config{Dir: dir, Log: slog.Default()})
	if err == nil {
		t.Fatal("a member without its cluster certificate opened")
	}

	_, err = listener.LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	certPEM, keyPEM, _ := listener.ReadCertFiles(dir, listener.CertFile, listener.KeyFile)
	_ = listener.WriteCertFiles(dir, listener.ClusterCertFile, listener.ClusterKeyFile, certPEM, keyPEM)
	s, err := Open(ctx, Config{Dir: dir, Log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}

	defer s.Close()
	self := s.Self()
	if !s.Enabled() || self.ID != 3 || self.Name != "n3" || self.Address != "10.0.0.3:8443" {
		t.Fatalf("clustered self: %+v", self)
	}

	cfg := s.ClientTLS()
	if cfg == nil || cfg.GetClientCertificate == nil || cfg.VerifyPeerCertificate == nil {
		t.Fatal("member TLS: no client certificate or no pin")
	}

	if c, err := cfg.GetClientCertificate(nil); err != nil || string(c.Certificate[0]) != string(s.Cert().KeyPair.Certificate[0]) {
		t.Fatalf("member TLS presents another certificate than the cluster's: %v", err)
	}

	if cfg.VerifyPeerCertificate([][]byte{[]byte("other")}, nil) == nil {
		t.Fatal("member TLS accepts a certificate other than the cluster's")
	}

	if cfg.VerifyPeerCertificate([][]byte{s.Cert().KeyPair.Leaf.Raw}, nil) != nil {
		t.Fatal("member TLS refuses the cluster certificate")
	}
}
