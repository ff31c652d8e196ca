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
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// TestMetricsPrometheus has a real Prometheus (Debian's prometheus package) scrape a real
// berthd over HTTPS with a TLS client certificate, and finds a running container's
// lxd_memory_RSS_bytes through Prometheus's query API. That proves Prometheus's own
// OpenMetrics parser takes the exposition (a rejected scrape stores nothing).
//
// Until berthd serves HTTPS itself (issue 11 items 1 and 2), the endpoint is served here by
// a small TLS reverse proxy to the unix socket that demands the client certificate; the
// trust tests call checkPrometheusScrapes with berthd's own address and a metrics-type
// certificate once they land.
func TestMetricsPrometheus(t *testing.T) {
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c")
	d.waitRunning("c")

	dir := t.TempDir()
	client := writeCert(t, dir, "metrics", nil)
	server := writeCert(t, dir, "server", []net.IP{net.IPv4(127, 0, 0, 1)})

	addr := tlsProxyToSocket(t, filepath.Join(d.dir, "unix.socket"), server, client.fingerprint)
	checkPrometheusScrapes(t, "https://"+addr+"/1.0/metrics", client.certFile, client.keyFile, server.certFile, "c")
}

// checkPrometheusScrapes starts a Prometheus (own data directory, a free loopback port)
// that scrapes metricsURL over HTTPS with the client certificate certFile/keyFile, trusting
// the server certificate in caFile ("" skips verification), and waits until its query API
// returns lxd_memory_RSS_bytes{name=instance} above zero and up == 1.
func checkPrometheusScrapes(t *testing.T, metricsURL, certFile, keyFile, caFile, instance string) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "prometheus (Debian package prometheus) is not installed")
	}

	u, err := url.Parse(metricsURL)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("metrics URL %q: want https://host:port/path (%v)", metricsURL, err)
	}

	dir := t.TempDir()
	tlsConf := fmt.Sprintf("{cert_file: %q, key_file: %q, insecure_skip_verify: true}", certFile, keyFile)
	if caFile != "" {
		tlsConf = fmt.Sprintf("{cert_file: %q, key_file: %q, ca_file: %q}", certFile, keyFile, caFile)
	}

	config := fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: berth
    scheme: https
    metrics_path: %q
    tls_config: %s
    static_configs:
      - targets: [%q]
`, u.Path, tlsConf, u.Host)

	cfgFile := filepath.Join(dir, "prometheus.yml")
	err = os.WriteFile(cfgFile, []byte(config), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	web := freeLoopbackAddr(t)
	var plog bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &plog, &plog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}

		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(plog.String(), 40))
		}
	})

	query := fmt.Sprintf(`lxd_memory_RSS_bytes{name=%q,project="default",type="container"}`, instance)
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		up, _ := promQuery(web, `up{job="berth"}`)
		rss, err := promQuery(web, query)
		if err == nil && up == 1 && rss > 0 {
			return
		}

		last = fmt.Sprintf("up=%v rss=%v err=%v", up, rss, err)
		time.Sleep(time.Second)
	}

	targets, _ := httpGet("http://" + web + "/api/v1/targets")
	t.Fatalf("Prometheus never returned %s: %s\ntargets: %s", query, last, targets)
}

// promQuery runs an instant query and returns the value of its single result.
func promQuery(web, q string) (float64, error) {
	body, err := httpGet("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}

	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}

	err = json.Unmarshal(body, &r)
	if err != nil {
		return 0, err
	}

	if r.Status != "success" || len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %s", q, body)
	}

	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

func httpGet(u string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}

	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

// testCert is a self-signed certificate written to files.
type testCert struct {
	certFile, keyFile string
	tls               tls.Certificate
	fingerprint       [32]byte
}

// writeCert makes a self-signed ECDSA P-384 certificate (LXD's kind) for ips, or a client
// certificate when ips is nil.
func writeCert(t *testing.T, dir, name string, ips []net.IP) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		IsCA:         ips != nil, // the server certificate is its own CA for Prometheus's ca_file

		BasicConstraintsValid: true,
	}

	if ips != nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	c := testCert{certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key"), fingerprint: sha256.Sum256(der)}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	err = errors.Join(os.WriteFile(c.certFile, certPEM, 0o600), os.WriteFile(c.keyFile, keyPEM, 0o600))
	if err != nil {
		t.Fatal(err)
	}

	c.tls, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	return c
}

// tlsProxyToSocket serves HTTPS on a loopback port, refuses any client whose certificate
// is not the one with fingerprint want, and forwards the rest to berthd's unix socket.
func tlsProxyToSocket(t *testing.T, socket string, server testCert, want [32]byte) string {
	t.Helper()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "unix.socket" },
		Transport: &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}

	srv := &http.Server{
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the refused probe below would log
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{server.tls},
			ClientAuth:   tls.RequireAnyClientCert,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || sha256.Sum256(raw[0]) != want {
					return errors.New("untrusted client certificate")
				}

				return nil
			},
		},
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	// The proxy refuses a client without the certificate: the scrape below is authenticated.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + l.Addr().String() + "/1.0/metrics")
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the proxy served a client without a certificate: %s", resp.Status)
	}

	return l.Addr().String()
}
