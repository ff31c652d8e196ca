package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// The remote API's defences, each against a real berthd listening on a loopback port.
// Every refusal has a positive control: the same request from a trusted client (or a
// fresh token, or a TLS 1.3 client) goes through.

// issueToken asks for a join token over the unix socket and returns the operation id
// and the secret.
func (d *daemon) issueToken(name string) (string, string) {
	d.t.Helper()
	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"`+name+`","type":"client","token":true}`))
	if code != http.StatusAccepted {
		d.t.Fatalf("token for %s: %d %s", name, code, env.Error)
	}

	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	secret, _ := op.Metadata["secret"].(string)
	if op.Class != api.OperationClassToken || secret == "" {
		d.t.Fatalf("token operation %+v", op)
	}

	return op.ID, secret
}

// trustedClient is a client whose certificate was added with a join token.
func (d *daemon) trustedClient(addr, name string) (*httpsClient, tls.Certificate) {
	d.t.Helper()
	cert := newClientCert(d.t)
	c := newHTTPSClient(d.t, addr, tlsConfigFor(d.serverCert(), cert))
	_, secret := d.issueToken(name)
	code, env := c.join(secret)
	if code != http.StatusCreated || c.authOf() != "trusted" {
		d.t.Fatalf("joining as %s: %d %s", name, code, env.Error)
	}

	return c, cert
}

func TestRemoteUntrustedRefused(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()
	admin, _ := d.trustedClient(addr, "admin")
	anon := newHTTPSClient(t, addr, tlsConfigFor(server))
	stranger := newHTTPSClient(t, addr, tlsConfigFor(server, newClientCert(t)))

	_, env := d.raw("GET", "/1.0/images?recursion=1", nil)
	var images []api.Image
	_ = json.Unmarshal(env.Metadata, &images)
	if len(images) != 1 {
		t.Fatalf("images: %s", env.Metadata)
	}

	fp := images[0].Fingerprint
	// anon is the status for a caller without a certificate when not 403: a token
	// cannot add a certificate the connection does not have.
	refused := []struct {
		method, path, body string
		anon               int
	}{
		{"GET", "/1.0/instances", "", 0},
		{"GET", "/1.0/instances?recursion=2", "", 0},
		{"POST", "/1.0/instances", `{"name":"x","source":{"type":"image","alias":"debian/12"}}`, 0},
		{"GET", "/1.0/instances/x", "", 0},
		{"POST", "/1.0/instances/x/exec", `{"command":["true"]}`, 0},
		{"GET", "/1.0/events", "", 0},
		{"GET", "/1.0/operations", "", 0},
		{"GET", "/1.0/certificates", "", 0},
		{"GET", "/1.0/certificates/" + fingerprintOf(newClientCert(t)), "", 0},
		{"POST", "/1.0/certificates", `{"certificate":"","password":""}`, 0},
		{"POST", "/1.0/certificates", `{"password":"not-a-token"}`, http.StatusBadRequest},
		{"POST", "/1.0/certificates", `{"token":true,"name":"me"}`, 0},
		{"PUT", "/1.0", `{"config":{"core.https_address":""}}`, 0},
		{"PATCH", "/1.0", `{"config":{"core.remote_token_expiry":"1S"}}`, 0},
		{"GET", "/1.0/profiles", "", 0},
		{"PUT", "/1.0/profiles/default", `{"config":{}}`, 0},
		{"GET", "/1.0/networks", "", 0},
		{"GET", "/1.0/storage-pools", "", 0},
		{"PUT", "/1.0/images/" + fp, `{"public":true}`, 0},
		{"DELETE", "/1.0/images/" + fp, "", 0},
		{"GET", "/1.0/images/aliases", "", 0},
		{"POST", "/1.0/images/aliases", `{"name":"x","target":"` + fp + `"}`, 0},
		{"GET", "/1.0/internal/debug/goroutines", "", 0},
		{"GET", "/1.0/metrics", "", 0},
		{"GET", "/1.0/nowhere", "", 0},
	}

	for _, who := range []struct {
		name string
		c    *httpsClient
	}{{"no certificate", anon}, {"untrusted certificate", stranger}} {
		for _, r := range refused {
			var body any
			if r.body != "" {
				body = json.RawMessage(r.body)
			}

			want := http.StatusForbidden
			if who.c == anon && r.anon != 0 {
				want = r.anon
			}

			code, data := who.c.do(r.method, r.path, body)
			if code != want {
				t.Errorf("%s: %s %s: %d %.200s, want %d", who.name, r.method, r.path, code, data, want)
			}
		}

		// The untrusted set.
		if code, _ := who.c.do("GET", "/", nil); code != http.StatusOK {
			t.Errorf("%s: GET /: %d", who.name, code)
		}

		code, data := who.c.do("GET", "/1.0", nil)
		var doc map[string]json.RawMessage
		_ = json.Unmarshal(envelope(t, data).Metadata, &doc)
		keys := make([]string, 0, len(doc))
		for k := range doc {
			keys = append(keys, k)
		}

		sort.Strings(keys)
		if code != http.StatusOK || strings.Join(keys, ",") != "api_extensions,api_status,api_version,auth,auth_methods,public" || string(doc["auth"]) != `"untrusted"` {
			t.Errorf("%s: GET /1.0: %d %s", who.name, code, data)
		}
	}

	// Positive control: the refused reads work for a trusted client.
	for _, r := range refused {
		if r.method != "GET" || r.path == "/1.0/internal/debug/goroutines" {
			continue
		}

		code, data := admin.do(r.method, r.path, nil)
		if code == http.StatusForbidden {
			t.Errorf("trusted: %s %s: 403 %.200s", r.method, r.path, data)
		}
	}

	// Internal endpoints are for the unix socket only, even for a trusted client.
	if code, _ := admin.do("GET", "/1.0/internal/debug/goroutines", nil); code != http.StatusForbidden {
		t.Errorf("trusted client reached an internal endpoint: %d", code)
	}

	// Nothing the refused requests asked for happened.
	_, env = d.raw("GET", "/1.0", nil)
	var srv api.Server
	_ = json.Unmarshal(env.Metadata, &srv)
	if srv.Config["core.https_address"] != addr || srv.Config["core.remote_token_expiry"] != "" {
		t.Errorf("server config changed by untrusted callers: %v", srv.Config)
	}

	if names, _ := d.c.GetInstanceNames(t.Context()); len(names) != 0 {
		t.Errorf("instances created by untrusted callers: %v", names)
	}

	// Trusted GET /1.0: where to reach the server and its certificate.
	code, data := admin.do("GET", "/1.0", nil)
	_ = json.Unmarshal(envelope(t, data).Metadata, &srv)
	sum := sha256.Sum256(server.Raw)
	block, _ := pem.Decode([]byte(srv.Environment.Certificate))
	if code != http.StatusOK || srv.Auth != "trusted" || !slices.Equal(srv.Environment.Addresses, []string{addr}) ||
		srv.Environment.CertificateFingerprint != hex.EncodeToString(sum[:]) || block == nil || string(block.Bytes) != string(server.Raw) {
		t.Errorf("trusted GET /1.0: %d auth %q addresses %v fingerprint %q", code, srv.Auth, srv.Environment.Addresses, srv.Environment.CertificateFingerprint)
	}

	testPublicImages(t, d, anon, admin, fp)
}

// testPublicImages: untrusted callers see public images and nothing of private ones.
func testPublicImages(t *testing.T, d *daemon, anon, admin *httpsClient, fp string) {
	list := func(c *httpsClient) []string {
		code, data := c.do("GET", "/1.0/images", nil)
		var urls []string
		_ = json.Unmarshal(envelope(t, data).Metadata, &urls)
		if code != http.StatusOK {
			t.Fatalf("GET /1.0/images: %d", code)
		}

		return urls
	}

	exportStatus := func(c *httpsClient) int {
		resp, err := c.hc.Get("https://" + c.addr + "/1.0/images/" + fp + "/export")
		if err != nil {
			t.Fatal(err)
		}

		defer func() { _ = resp.Body.Close() }()
		magic := make([]byte, 2)
		_, _ = io.ReadFull(resp.Body, magic)
		if resp.StatusCode == http.StatusOK && string(magic) != "\x1f\x8b" {
			t.Errorf("export is not a gzip tarball: %q", magic)
		}

		return resp.StatusCode
	}

	// Private (as imported): invisible to the untrusted, visible to the trusted.
	if got := list(anon); len(got) != 0 {
		t.Errorf("untrusted list shows private images: %v", got)
	}

	for _, path := range []string{"/1.0/images/" + fp, "/1.0/images/aliases/debian/12"} {
		if code, _ := anon.do("GET", path, nil); code != http.StatusNotFound {
			t.Errorf("untrusted GET %s of a private image: %d, want 404", path, code)
		}
	}

	if code := exportStatus(anon); code != http.StatusNotFound {
		t.Errorf("untrusted export of a private image: %d", code)
	}

	if got := list(admin); len(got) != 1 {
		t.Errorf("trusted list: %v", got)
	}

	// Public: the untrusted may list, read and download it, and no more.
	code, env := d.raw("PUT", "/1.0/images/"+fp, strings.NewReader(`{"public":true,"properties":{}}`))
	if code != http.StatusOK {
		t.Fatalf("making the image public: %d %s", code, env.Error)
	}

	if got := list(anon); len(got) != 1 {
		t.Errorf("untrusted list of a public image: %v", got)
	}

	for _, path := range []string{"/1.0/images/" + fp, "/1.0/images/aliases/debian/12"} {
		if code, data := anon.do("GET", path, nil); code != http.StatusOK {
			t.Errorf("untrusted GET %s of a public image: %d %s", path, code, data)
		}
	}

	if code := exportStatus(anon); code != http.StatusOK {
		t.Errorf("untrusted export of a public image: %d", code)
	}

	if code, _ := anon.do("PUT", "/1.0/images/"+fp, json.RawMessage(`{"public":false}`)); code != http.StatusForbidden {
		t.Errorf("untrusted PUT of a public image: %d", code)
	}
}

func TestRemoteTokens(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()
	newClient := func() *httpsClient { return newHTTPSClient(t, addr, tlsConfigFor(server, newClientCert(t))) }

	// The whole base64 token, as lxc 5.0 sends it, adds the caller's certificate.
	lxcToken := d.trustToken("first")
	a := newClient()
	if code, env := a.join(lxcToken); code != http.StatusCreated || a.authOf() != "trusted" {
		t.Fatalf("redeeming a token: %d %s", code, env.Error)
	}

	// Reused: by its whole form or by its secret.
	b := newClient()
	raw, _ := base64Decode(lxcToken)
	var tok api.CertificateAddToken
	_ = json.Unmarshal(raw, &tok)
	for _, pw := range []string{lxcToken, tok.Secret} {
		if code, _ := b.join(pw); code != http.StatusForbidden || b.authOf() != "untrusted" {
			t.Errorf("reused token: %d, %s", code, b.authOf())
		}
	}

	// Expired.
	if code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.remote_token_expiry":"1S"}}`)); code != http.StatusOK {
		t.Fatalf("setting core.remote_token_expiry: %s", env.Error)
	}

	_, expiring := d.issueToken("late")
	time.Sleep(2 * time.Second)
	if code, _ := b.join(expiring); code != http.StatusForbidden || b.authOf() != "untrusted" {
		t.Errorf("expired token: %d, %s", code, b.authOf())
	}

	d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.remote_token_expiry":""}}`))

	// Revoked (lxc config trust revoke-token deletes the operation).
	id, revoked := d.issueToken("revoked")
	if code, env := d.raw("DELETE", "/1.0/operations/"+id, nil); code != http.StatusOK {
		t.Fatalf("revoking: %d %s", code, env.Error)
	}

	if code, _ := b.join(revoked); code != http.StatusForbidden {
		t.Errorf("revoked token: %d", code)
	}

	// Positive control: a fresh token lets the same client in.
	_, fresh := d.issueToken("second")
	if code, env := b.join(fresh); code != http.StatusCreated || b.authOf() != "trusted" {
		t.Errorf("fresh token: %d %s", code, env.Error)
	}

	// The audit trail: the refusals and the trusted client's changes, with who did them.
	code, _ := b.do("POST", "/1.0/profiles", map[string]any{"name": "audited"})
	if code != http.StatusCreated {
		t.Fatalf("trusted POST /1.0/profiles: %d", code)
	}

	for _, want := range []string{
		`msg="authentication failed"`,
		`reason="bad certificate add token"`,
		`msg="api request" audit=true caller="cert second (` + fingerprintOf(tlsCertOf(b))[:12] + `)"`,
		`method=POST path=/1.0/profiles status=201`,
		`msg="api request" audit=true caller="unix uid 0" uid=0`,
	} {
		if !d.waitLog(want) {
			t.Errorf("daemon log lacks %s", want)
		}
	}
}

func tlsCertOf(c *httpsClient) tls.Certificate { return c.cfg.Certificates[0] }

// A removed certificate's open events websocket ends at once; another client's stays
// and sees the removal.
func TestRemoteRevokedWebsocketClosed(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	a, certA := d.trustedClient(addr, "a")
	c, _ := d.trustedClient(addr, "c")

	events := func(cl *httpsClient) *websocket.Conn {
		dialer := websocket.Dialer{TLSClientConfig: cl.cfg, HandshakeTimeout: 5 * time.Second}
		conn, _, err := dialer.Dial("wss://"+addr+"/1.0/events?type=lifecycle", nil)
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}

	wsA, wsC := events(a), events(c)
	if code, _ := a.do("GET", "/1.0/instances", nil); code != http.StatusOK {
		t.Fatalf("a before removal: %d", code)
	}

	fp := fingerprintOf(certA)
	removed := time.Now()
	if code, env := d.raw("DELETE", "/1.0/certificates/"+fp, nil); code != http.StatusOK {
		t.Fatalf("removing a: %d %s", code, env.Error)
	}

	_ = wsA.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := wsA.ReadMessage()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("removed client's events websocket still open: %v %s", err, msg)
	}

	if took := time.Since(removed); took > 3*time.Second {
		t.Errorf("removed client's websocket closed after %v", took)
	}

	// The other client is still connected and told of the removal.
	_ = wsC.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := wsC.ReadMessage()
		if err != nil {
			t.Fatalf("the other client's websocket: %v", err)
		}

		if strings.Contains(string(msg), "certificate-deleted") && strings.Contains(string(msg), fp) {
			break
		}
	}

	if code, _ := a.do("GET", "/1.0/instances", nil); code != http.StatusForbidden {
		t.Errorf("removed client's next request: %d, want 403", code)
	}
}

func TestRemoteTLSRefusals(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()

	// TLS 1.2 and below: refused in the handshake, with a protocol version alert.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS11} {
		cfg := tlsConfigFor(server, newClientCert(t))
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, v
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			_ = conn.Close()
			t.Errorf("TLS %x client accepted", v)
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS %x client: %v, want a protocol version alert", v, err)
		}
	}

	// Positive control: TLS 1.3.
	if auth := newHTTPSClient(t, addr, tlsConfigFor(server)).authOf(); auth != "untrusted" {
		t.Errorf("TLS 1.3 client: %q", auth)
	}

	// Plain HTTP on the TLS port: a clear 400, not silence.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/1.0")
	if err != nil {
		t.Fatal(err)
	}

	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, body)
	}

	// The server's key and certificate are root's alone.
	for _, name := range []string{"server.key", "server.crt"} {
		fi, err := os.Lstat(d.dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}

		st := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || st.Uid != 0 {
			t.Errorf("%s: mode %v uid %d, want a 0600 file of root", name, fi.Mode(), st.Uid)
		}
	}
}

// A slowloris client (more connections than the listener's cap, each trickling its
// handshake or headers) does not keep others out: one address holds at most its share
// of connections, and each slow connection is closed after the header timeout.
func TestRemoteSlowloris(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()

	var slow []net.Conn
	t.Cleanup(func() {
		for _, c := range slow {
			_ = c.Close()
		}
	})

	stop := make(chan struct{})
	defer close(stop)
	trickling := 0

	// A few finished handshakes, then headers one byte a second.
	for i := 0; i < 10; i++ {
		c, err := tls.Dial("tcp", addr, tlsConfigFor(server))
		if err == nil {
			_, err = io.WriteString(c, "GET /1.0 HTTP/1.1\r\n")
		}

		if err != nil {
			continue
		}

		slow = append(slow, c)
		trickling++
		go func(c net.Conn) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
				}
			}
		}(c)
	}

	// Then more than the listener's cap (1024), each sending half a TLS record and
	// nothing more; those over the address's share are closed at once.
	for i := 0; i < 1100; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_, err = c.Write([]byte{0x16, 0x03})
		}

		if err == nil {
			slow = append(slow, c)
		}
	}

	// Another address is served at once.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfigFor(server), DialContext: dialer.DialContext}}
	start := time.Now()
	resp, err := other.Get("https://" + addr + "/1.0")
	if err != nil {
		t.Fatalf("a client from another address during the attack: %v", err)
	}

	_ = resp.Body.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a client from another address waited %v", took)
	}

	// Every slow connection is closed by the server after the header timeout (10 s),
	// however it trickles.
	deadline := time.Now().Add(40 * time.Second)
	open := 0
	for _, c := range slow {
		// Past the deadline, a short one: a read with an expired deadline fails
		// without looking at the connection.
		_ = c.SetReadDeadline(later(deadline, time.Now().Add(50*time.Millisecond)))
		_, err := bufio.NewReader(c).ReadString('\n')
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			open++
		}
	}

	if open > 0 {
		t.Fatalf("%d of %d slow connections still open after 40 s", open, len(slow))
	}

	// And the attacker's own address is served again.
	c := newHTTPSClient(t, addr, tlsConfigFor(server))
	if auth := c.authOf(); auth != "untrusted" {
		t.Errorf("after the attack: %q", auth)
	}

	t.Logf("%d slow connections opened (%d trickling headers), all closed by the server", len(slow), trickling)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}

	return b
}

// The listeners follow the configuration live, and the metrics listener serves
// /1.0/metrics alone, to trusted or metrics certificates unless
// core.metrics_authentication is off.
func TestRemoteListenersLive(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()
	admin, _ := d.trustedClient(addr, "admin")

	// A metrics certificate: /1.0/metrics and nothing else.
	metricsCert := newClientCert(t)
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: metricsCert.Certificate[0]})
	body, _ := json.Marshal(map[string]any{"name": "prom", "type": "metrics", "certificate": string(block)})
	if code, env := d.raw("POST", "/1.0/certificates", bytes.NewReader(body)); code != http.StatusCreated {
		t.Fatalf("adding a metrics certificate: %d %s", code, env.Error)
	}

	metricsAddr := freeLoopbackAddr(t)
	if code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.metrics_address":"`+metricsAddr+`"}}`)); code != http.StatusOK {
		t.Fatalf("setting core.metrics_address: %d %s", code, env.Error)
	}

	prom := newHTTPSClient(t, metricsAddr, tlsConfigFor(server, metricsCert))
	anon := newHTTPSClient(t, metricsAddr, tlsConfigFor(server))
	served := func(code int) bool { return code == http.StatusOK || code == http.StatusNotImplemented }
	if code, _ := prom.do("GET", "/1.0/metrics", nil); !served(code) {
		t.Errorf("metrics certificate on the metrics listener: %d", code)
	}

	if code, _ := prom.do("GET", "/1.0", nil); code != http.StatusNotFound {
		t.Errorf("GET /1.0 on the metrics listener: %d, want 404", code)
	}

	if code, _ := anon.do("GET", "/1.0/metrics", nil); code != http.StatusForbidden {
		t.Errorf("untrusted scrape with authentication on: %d, want 403", code)
	}

	promAPI := newHTTPSClient(t, addr, tlsConfigFor(server, metricsCert))
	if code, _ := promAPI.do("GET", "/1.0/instances", nil); code != http.StatusForbidden {
		t.Errorf("metrics certificate on the API: %d, want 403", code)
	}

	if code, _ := admin.do("GET", "/1.0/metrics", nil); !served(code) {
		t.Errorf("client certificate scraping the API listener: %d", code)
	}

	d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.metrics_authentication":"false"}}`))
	if code, _ := anon.do("GET", "/1.0/metrics", nil); !served(code) {
		t.Errorf("untrusted scrape with authentication off: %d", code)
	}

	// Moving the API listener: the old address stops answering, the new one serves.
	moved := freeLoopbackAddr(t)
	if code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.https_address":"`+moved+`"}}`)); code != http.StatusOK {
		t.Fatalf("moving core.https_address: %d %s", code, env.Error)
	}

	if auth := newHTTPSClient(t, moved, admin.cfg).authOf(); auth != "trusted" {
		t.Errorf("on the new address: %q", auth)
	}

	waitClosed(t, addr)

	// A bad or taken address is refused and changes nothing.
	for _, bad := range []string{"example.com:1", metricsAddr, "192.0.2.1:8443"} {
		code, _ := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.https_address":"`+bad+`"}}`))
		if code != http.StatusBadRequest {
			t.Errorf("core.https_address=%s: %d, want 400", bad, code)
		}
	}

	if auth := newHTTPSClient(t, moved, admin.cfg).authOf(); auth != "trusted" {
		t.Errorf("after refused moves: %q", auth)
	}

	// Unset: no network listener left.
	d.raw("PUT", "/1.0", strings.NewReader(`{"config":{}}`))
	waitClosed(t, moved)
	waitClosed(t, metricsAddr)
}

func waitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}

		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}

		time.Sleep(100 * time.Millisecond)
	}
}
