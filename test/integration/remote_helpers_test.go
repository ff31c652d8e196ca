package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// Helpers of the remote API tests: a berthd listening on a loopback port, the stock
// lxc as a remote client with its own configuration, and Go HTTPS clients with
// certificates of their own.

// listenHTTPS points core.https_address at a free loopback port and returns the
// address. Another process may take the port between the probe and the bind: retry.
func (d *daemon) listenHTTPS() string {
	d.t.Helper()
	for try := 0; try < 5; try++ {
		addr := freeLoopbackAddr(d.t)
		code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.https_address":"`+addr+`"}}`))
		if code == http.StatusOK {
			return addr
		}

		if !strings.Contains(env.Error, "in use") {
			d.t.Fatalf("setting core.https_address: %d %s", code, env.Error)
		}
	}

	d.t.Fatal("no free port for core.https_address")
	return ""
}

// serverCert is the daemon's certificate as GET /1.0 shows it over the unix socket.
func (d *daemon) serverCert() *x509.Certificate {
	d.t.Helper()
	_, env := d.raw("GET", "/1.0", nil)
	var srv api.Server
	err := json.Unmarshal(env.Metadata, &srv)
	if err != nil {
		d.t.Fatal(err)
	}

	block, _ := pem.Decode([]byte(srv.Environment.Certificate))
	if block == nil {
		d.t.Fatalf("GET /1.0 has no server certificate: %q", srv.Environment.Certificate)
	}

	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		d.t.Fatal(err)
	}

	return cert
}

// lxcTool runs Debian's lxc with its own HOME and LXD_CONF. LXD_DIR points at the
// daemon for "local" (the server side), or at an empty directory for a pure remote
// client, so that nothing reaches another LXD on the machine.
type lxcTool struct {
	t    *testing.T
	bin  string
	env  []string
	conf string
	// netns, when set, is the network namespace (a /run/netns path) lxc runs in: the
	// hub of a test cluster.
	netns string
}

func newLXC(t *testing.T, localDir string) *lxcTool {
	t.Helper()
	bin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

	home := t.TempDir()
	if localDir == "" {
		localDir = t.TempDir()
	}

	conf := filepath.Join(home, "lxc")
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LXD_CONF=" + conf, "LXD_DIR=" + localDir, "LANG=C.UTF-8"}
	return &lxcTool{t: t, bin: bin, env: env, conf: conf}
}

// run runs lxc with an empty stdin and returns its combined output and error.
func (l *lxcTool) run(args ...string) (string, error) {
	cmd := exec.Command(l.bin, args...)
	if l.netns != "" {
		// A cluster command that hangs must fail the test, not outlive its timeout:
		// a test binary killed by -timeout runs no cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd = exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + l.netns, "--", l.bin}, args...)...)
	}

	cmd.Env = l.env
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lxcTool) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatalf("lxc %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	return out
}

// trustToken issues a join token on the server side (`lxc config trust add --name`
// over the unix socket) and returns it.
func (d *daemon) trustToken(name string) string {
	d.t.Helper()
	out := newLXC(d.t, d.dir).must("config", "trust", "add", "--name", name)
	lines := strings.Fields(strings.TrimSpace(out))
	if len(lines) == 0 {
		d.t.Fatalf("lxc config trust add printed nothing")
	}

	return lines[len(lines)-1]
}

// newClientCert makes a self-signed ECDSA P-384 client certificate, as lxc does.
func newClientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test@client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsConfigFor pins the daemon's certificate and presents certs (none: no client
// certificate).
func tlsConfigFor(server *x509.Certificate, certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(server)
	return &tls.Config{RootCAs: pool, ServerName: server.DNSNames[0], Certificates: certs, MinVersion: tls.VersionTLS13}
}

// httpsClient talks to addr with cfg, one connection per request.
type httpsClient struct {
	t    *testing.T
	addr string
	cfg  *tls.Config
	hc   *http.Client
}

func newHTTPSClient(t *testing.T, addr string, cfg *tls.Config) *httpsClient {
	return &httpsClient{t: t, addr: addr, cfg: cfg, hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}}
}

// do sends a request and returns the status and the raw body.
func (c *httpsClient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rdr io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}

		rdr = bytes.NewReader(data)
	}

	req, err := http.NewRequest(method, "https://"+c.addr+path, rdr)
	if err != nil {
		c.t.Fatal(err)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}

	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data
}

// envelope decodes a response body.
func envelope(t *testing.T, data []byte) api.Response {
	t.Helper()
	var env api.Response
	err := json.Unmarshal(data, &env)
	if err != nil {
		t.Fatalf("not an envelope: %q", data)
	}

	return env
}

// join redeems a token with c's certificate: POST /1.0/certificates as the 5.0 client does.
func (c *httpsClient) join(password string) (int, api.Response) {
	c.t.Helper()
	code, data := c.do("POST", "/1.0/certificates", map[string]any{
		"name": "", "type": "client", "restricted": false, "projects": nil, "certificate": "", "password": password, "token": false,
	})
	return code, envelope(c.t, data)
}

// authOf is the auth field of GET /1.0.
func (c *httpsClient) authOf() string {
	c.t.Helper()
	code, data := c.do("GET", "/1.0", nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET /1.0: %d %s", code, data)
	}

	var srv api.Server
	_ = json.Unmarshal(envelope(c.t, data).Metadata, &srv)
	return srv.Auth
}

func fingerprintOf(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
