package trust

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newStore(t *testing.T) (*Store, *db.DB) {
	t.Helper()
	d, err := db.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	s, err := NewStore(context.Background(), d, quiet())
	if err != nil {
		t.Fatal(err)
	}

	return s, d
}

// clientCert makes a self-signed client certificate, as lxc does.
func clientCert(t *testing.T, cn string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	cert, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert
}

func TestStorePersistsAndForgets(t *testing.T) {
	s, d := newStore(t)
	ctx := context.Background()
	_, a := clientCert(t, "a")
	fp := listener.Fingerprint(a.Raw)

	got, err := s.Add(ctx, a, api.CertificatePut{Name: "laptop"})
	if err != nil || got != fp {
		t.Fatalf("Add: %q, %v", got, err)
	}

	e, ok := s.Lookup(fp)
	if !ok || e.Type != api.CertificateTypeClient || e.Name != "laptop" {
		t.Fatalf("Lookup after Add: %+v, %v", e, ok)
	}

	_, err = s.Add(ctx, a, api.CertificatePut{Name: "again"})
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Errorf("second Add: %v, want 409", err)
	}

	// A new store (a restarted daemon) trusts it too.
	s2, err := NewStore(ctx, d, quiet())
	if err != nil {
		t.Fatal(err)
	}

	if _, ok := s2.Lookup(fp); !ok {
		t.Fatal("not trusted after reload")
	}

	// By unique prefix, as lxc config trust remove takes the 12 characters it lists.
	_, err = s.Delete(ctx, fp[:12])
	if err != nil {
		t.Fatal(err)
	}

	if _, ok := s.Lookup(fp); ok {
		t.Fatal("still trusted after Delete")
	}
}

func TestNormalise(t *testing.T) {
	for _, bad := range []api.CertificatePut{
		{Type: "server"},
		{Name: strings.Repeat("n", maxName+1)},
		{Name: "bell\a"},
		{Projects: []string{"default"}}, // projects without restricted would confine nothing
		{Restricted: true, Type: api.CertificateTypeMetrics},
		{Restricted: true, Projects: []string{"a_b"}},
		{Restricted: true, Projects: []string{"../x"}},
	} {
		_, err := Normalise(bad)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("Normalise(%+v): %v, want 400", bad, err)
		}
	}

	put, err := Normalise(api.CertificatePut{Restricted: true, Projects: []string{"p2", "p1", "p2"}})
	if err != nil || !slices.Equal(put.Projects, []string{"p1", "p2"}) {
		t.Errorf("Normalise(restricted): %+v, %v", put, err)
	}

	put, err = Normalise(api.CertificatePut{Name: "ok"})
	if err != nil || put.Type != api.CertificateTypeClient || put.Projects == nil {
		t.Errorf("Normalise defaults: %+v, %v", put, err)
	}
}

// A restricted row is loaded restricted to its projects, and so is a row that names
// projects without the flag (a hand edit): neither is an administrator.
func TestStoreLoadsRestricted(t *testing.T) {
	s, d := newStore(t)
	ctx := context.Background()
	_, a := clientCert(t, "a")
	_, b := clientCert(t, "b")
	for _, row := range []db.Certificate{
		{Fingerprint: listener.Fingerprint(a.Raw), Type: api.CertificateTypeClient, Name: "r", Restricted: true, Projects: []string{"p1"}},
		{Fingerprint: listener.Fingerprint(b.Raw), Type: api.CertificateTypeClient, Name: "p", Projects: []string{"p1"}},
	} {
		err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			_, err := tx.CreateCertificate(ctx, row)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	err := s.reload(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []*x509.Certificate{a, b} {
		e, ok := s.Lookup(listener.Fingerprint(c.Raw))
		if !ok || !e.Restricted {
			t.Fatalf("stored restricted certificate: %+v, %v", e, ok)
		}

		caller := Caller{Via: ViaTLS, Fingerprint: e.Fingerprint, Trusted: true, Cert: e}
		if caller.Admin() || !caller.Restricted() || !caller.MayUse("p1") || caller.MayUse("default") || caller.MayUse("") {
			t.Errorf("caller of %q: admin %v, may use p1 %v, default %v", e.Name, caller.Admin(), caller.MayUse("p1"), caller.MayUse("default"))
		}
	}

	// Positive control: an unrestricted client is an administrator.
	admin := Caller{Via: ViaTLS, Trusted: true, Cert: Entry{Type: api.CertificateTypeClient}}
	if !admin.Admin() || !admin.MayUse("p1") {
		t.Error("an unrestricted client is not an administrator")
	}
}

// tlsServer serves handler over a real HTTPS endpoint whose callers s authenticates;
// it answers "trusted NAME" or "untrusted".
func tlsServer(t *testing.T, s *Store, hijack chan<- struct{}) (string, *listener.Cert) {
	t.Helper()
	cert, err := listener.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.Authenticate(r)
		if r.URL.Path == "/hold" && c.Trusted {
			// A long-lived connection, as an events websocket.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}

			_, _ = io.WriteString(conn, "held\n")
			hijack <- struct{}{}
			_, _ = io.Copy(io.Discard, conn)
			return
		}

		if r.URL.Path == "/remove-self" && c.Trusted {
			_, err := s.Delete(r.Context(), c.Fingerprint)
			if err == nil {
				_, _ = io.WriteString(w, "removed")
			}

			return
		}

		if c.Trusted {
			_, _ = io.WriteString(w, "trusted "+c.Cert.Name)
			return
		}

		_, _ = io.WriteString(w, "untrusted")
	})

	ep := listener.New(listener.Config{Name: "test", Handler: h, TLS: listener.ServerTLSConfig(cert), Log: quiet(), ConnContext: TLSConnContext})
	err = ep.Set("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(ep.Close)
	return ep.Addr().String(), cert
}

func clientConfig(server *listener.Cert, certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(server.KeyPair.Leaf)
	return &tls.Config{RootCAs: pool, ServerName: server.KeyPair.Leaf.DNSNames[0], Certificates: certs}
}

func fetch(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func TestAuthenticateByLeafCertificate(t *testing.T) {
	s, _ := newStore(t)
	addr, server := tlsServer(t, s, nil)
	trustedPair, trusted := clientCert(t, "a")
	otherPair, other := clientCert(t, "b")
	_, err := s.Add(context.Background(), trusted, api.CertificatePut{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	if got := fetch(t, addr, clientConfig(server, trustedPair)); got != "trusted alice" {
		t.Errorf("trusted certificate: %q", got)
	}

	if got := fetch(t, addr, clientConfig(server)); got != "untrusted" {
		t.Errorf("no certificate: %q", got)
	}

	if got := fetch(t, addr, clientConfig(server, otherPair)); got != "untrusted" {
		t.Errorf("unknown certificate: %q", got)
	}

	// A client may append any certificate to its chain: only the leaf, whose key it
	// proved, counts. The trusted certificate behind another's leaf gets nothing.
	chained := tls.Certificate{Certificate: [][]byte{other.Raw, trusted.Raw}, PrivateKey: otherPair.PrivateKey}
	if got := fetch(t, addr, clientConfig(server, chained)); got != "untrusted" {
		t.Errorf("trusted certificate behind an untrusted leaf: %q", got)
	}
}

func TestDeleteCutsConnections(t *testing.T) {
	s, _ := newStore(t)
	held := make(chan struct{}, 1)
	addr, server := tlsServer(t, s, held)
	pair, cert := clientCert(t, "a")
	ctx := context.Background()
	fp, err := s.Add(ctx, cert, api.CertificatePut{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	conn, err := tls.Dial("tcp", addr, clientConfig(server, pair))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_, _ = io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("holding a connection: %q, %v", line, err)
	}

	<-held
	if n := s.conns.count(fp); n != 1 {
		t.Fatalf("%d connections tracked, want 1", n)
	}

	_, err = s.Delete(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}

	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = rd.ReadByte()
	var ne interface{ Timeout() bool }
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the removed client's connection is still open: %v", err)
	}

	if n := s.conns.count(fp); n != 0 {
		t.Errorf("%d connections still tracked", n)
	}
}

// A client that removes its own certificate gets the answer: the request's own
// connection is spared, its other connections are cut, and it is untrusted afterwards.
func TestDeleteSelfAnswers(t *testing.T) {
	s, _ := newStore(t)
	held := make(chan struct{}, 1)
	addr, server := tlsServer(t, s, held)
	pair, cert := clientCert(t, "a")
	fp, err := s.Add(context.Background(), cert, api.CertificatePut{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	conn, err := tls.Dial("tcp", addr, clientConfig(server, pair))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_, _ = io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("holding a connection: %q, %v", line, err)
	}

	<-held
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientConfig(server, pair)}}
	resp, err := hc.Get("https://" + addr + "/remove-self")
	if err != nil {
		t.Fatalf("removing its own certificate: %v", err)
	}

	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "removed" {
		t.Errorf("removing its own certificate: %q", body)
	}

	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = rd.ReadByte()
	var ne interface{ Timeout() bool }
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the removed client's other connection is still open: %v", err)
	}

	// The spared connection (kept alive by hc) is refused from its next request on.
	resp, err = hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}

	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "untrusted" {
		t.Errorf("after removing itself: %q, want untrusted", body)
	}

	if _, ok := s.Lookup(fp); ok {
		t.Error("the certificate is still trusted")
	}
}

func TestUpdateNarrowingCutsConnections(t *testing.T) {
	s, _ := newStore(t)
	held := make(chan struct{}, 1)
	addr, server := tlsServer(t, s, held)
	pair, cert := clientCert(t, "a")
	ctx := context.Background()
	fp, _ := s.Add(ctx, cert, api.CertificatePut{Name: "alice"})

	conn, err := tls.Dial("tcp", addr, clientConfig(server, pair))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_, _ = io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	<-held

	// A rename keeps the connection; becoming a metrics certificate does not.
	_, err = s.Update(ctx, fp, api.CertificatePut{Name: "alice2"})
	if err != nil || s.conns.count(fp) != 1 {
		t.Fatalf("rename: %v, %d connections", err, s.conns.count(fp))
	}

	_, err = s.Update(ctx, fp, api.CertificatePut{Name: "alice2", Type: api.CertificateTypeMetrics})
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for s.conns.count(fp) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	if s.conns.count(fp) != 0 {
		t.Fatal("connection kept after the certificate became metrics-only")
	}
}

func tokenOps(t *testing.T) *Tokens {
	t.Helper()
	return NewTokens(newRegistry())
}

func TestTokensSingleUse(t *testing.T) {
	tk := tokenOps(t)
	req := api.CertificatesPost{CertificatePut: api.CertificatePut{Name: "ci", Type: api.CertificateTypeClient}}
	op, err := tk.Issue(req, "serverfp", []string{"127.0.0.1:8443"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	md := op.Render().Metadata
	secret, _ := md["secret"].(string)
	if len(secret) != 64 || md["fingerprint"] != "serverfp" || op.Class() != api.OperationClassToken {
		t.Fatalf("token metadata %v", md)
	}

	// The whole base64 token, as `lxc remote add NAME TOKEN` sends it.
	whole := EncodeToken(api.CertificateAddToken{ClientName: "ci", Fingerprint: "serverfp", Addresses: []string{"127.0.0.1:8443"}, Secret: secret})
	got, err := tk.Redeem(whole, "serverfp")
	if err != nil || got.Name != "ci" {
		t.Fatalf("Redeem: %+v, %v", got, err)
	}

	for _, again := range []string{whole, secret} {
		_, err = tk.Redeem(again, "serverfp")
		if !errors.Is(err, ErrNoToken) {
			t.Errorf("second Redeem: %v, want ErrNoToken", err)
		}
	}

	if op.Status() != api.Cancelled {
		t.Errorf("redeemed token operation is %s, want Cancelled", op.Status())
	}
}

func TestTokensRefused(t *testing.T) {
	tk := tokenOps(t)
	issue := func(expires time.Time) string {
		op, err := tk.Issue(api.CertificatesPost{CertificatePut: api.CertificatePut{Name: "x"}}, "serverfp", []string{"a:1"}, expires)
		if err != nil {
			t.Fatal(err)
		}

		return op.Render().Metadata["secret"].(string)
	}

	// Expired: cancelled by its timer, and refused even before that fires.
	expired := issue(time.Now().Add(50 * time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	_, err := tk.Redeem(expired, "serverfp")
	if !errors.Is(err, ErrNoToken) {
		t.Errorf("expired token: %v", err)
	}

	// Revoked.
	secret := issue(time.Time{})
	for _, op := range tk.ops.List() {
		if op.Render().Metadata["secret"] == secret {
			_ = op.Cancel()
		}
	}

	_, err = tk.Redeem(secret, "serverfp")
	if !errors.Is(err, ErrNoToken) {
		t.Errorf("revoked token: %v", err)
	}

	// For another server.
	secret = issue(time.Time{})
	whole := EncodeToken(api.CertificateAddToken{Fingerprint: "otherfp", Secret: secret})
	_, err = tk.Redeem(whole, "serverfp")
	if !api.StatusErrorCheck(err, http.StatusForbidden) {
		t.Errorf("token of another server: %v", err)
	}

	// Wrong secrets, garbage and oversized passwords.
	for _, pw := range []string{"", "nope", secret[:63], base64.StdEncoding.EncodeToString([]byte(`{"secret":"x"}`)), strings.Repeat("a", maxPassword+1)} {
		_, err = tk.Redeem(pw, "serverfp")
		if err == nil {
			t.Errorf("password %.20q accepted", pw)
		}
	}

	// The real one still works after all that.
	_, err = tk.Redeem(secret, "serverfp")
	if err != nil {
		t.Errorf("valid token after failures: %v", err)
	}

	// No network address: nothing to put in the token.
	_, err = tk.Issue(api.CertificatesPost{}, "serverfp", nil, time.Time{})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Errorf("token without addresses: %v", err)
	}
}

// Clients racing with one token: exactly one wins.
func TestTokenRace(t *testing.T) {
	tk := tokenOps(t)
	op, _ := tk.Issue(api.CertificatesPost{CertificatePut: api.CertificatePut{Name: "x"}}, "fp", []string{"a:1"}, time.Time{})
	secret := op.Render().Metadata["secret"].(string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tk.Redeem(secret, "fp")
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}

	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d clients redeemed one token", wins)
	}
}

func TestCallerString(t *testing.T) {
	for c, want := range map[*Caller]string{
		{Via: ViaUnix, UID: 1000}: "unix uid 1000",
		{Via: ViaTLS, Trusted: true, Fingerprint: strings.Repeat("ab", 32), Cert: Entry{Name: "n"}}: "cert n (abababababab)",
		{Via: ViaTLS, Fingerprint: "cd"}: "untrusted cert cd",
		{Via: ViaTLS}:                    "untrusted",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v: %q, want %q", *c, got, want)
		}
	}

}

// Removing a certificate, or replacing it, tells onRevoke, which ends what the client
// left running beyond its connections.
func TestStoreRevokeHook(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var revoked []string
	s.OnRevoke(func(fp string) { revoked = append(revoked, fp) })
	_, a := clientCert(t, "a")
	_, b := clientCert(t, "b")
	fpA := listener.Fingerprint(a.Raw)
	_, err := s.Add(ctx, a, api.CertificatePut{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Update(ctx, fpA, api.CertificatePut{Name: "renamed"})
	if err != nil || len(revoked) != 0 {
		t.Fatalf("a rename revoked %v (%v)", revoked, err)
	}

	pemB := string(pemOf(b))
	fpB, err := s.Update(ctx, fpA, api.CertificatePut{Name: "b", Certificate: pemB})
	if err != nil || len(revoked) != 1 || revoked[0] != fpA {
		t.Fatalf("replacing the certificate revoked %v (%v)", revoked, err)
	}

	_, err = s.Delete(ctx, fpB)
	if err != nil || len(revoked) != 2 || revoked[1] != fpB {
		t.Fatalf("Delete revoked %v (%v)", revoked, err)
	}
}

func pemOf(c *x509.Certificate) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(c.Raw) + "\n-----END CERTIFICATE-----\n")
}
