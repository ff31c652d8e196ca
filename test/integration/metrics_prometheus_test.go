package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/metrics"
	"github.com/berth-dev/berth/test/testutil"
)

// TestMetricsPrometheus has a real Prometheus (Debian's prometheus package) scrape a real
// berthd on its own HTTPS listeners with a metrics-type certificate added through
// POST /1.0/certificates: the API listener (core.https_address) and the metrics listener
// (core.metrics_address). Prometheus's query API then returns a running container's
// lxd_memory_RSS_bytes, which proves Prometheus's own OpenMetrics parser takes the
// exposition (a rejected scrape stores nothing); promtool checks it too. The metrics
// certificate gets nothing else: 403 on the rest of the API, 404 off /1.0/metrics on the
// metrics listener.
//
// This replaces a variant that scraped through a TLS proxy in the test, written before
// berthd served HTTPS itself.
func TestMetricsPrometheus(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c")
	d.waitRunning("c")
	apiAddr := d.listenHTTPS()
	metricsAddr := d.listenMetrics()

	dir := t.TempDir()
	prom := writeCert(t, dir, "prometheus")
	d.addCertificate(prom, "prometheus", "metrics")

	// Prometheus pins berthd's own certificate and names the server by its DNS name.
	server := d.serverCert()
	caFile := filepath.Join(dir, "berthd.crt")
	err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Raw}), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	cfg := tlsConfigFor(server, prom.tls)
	for _, addr := range []string{apiAddr, metricsAddr} {
		code, body := newHTTPSClient(t, addr, cfg).do("GET", "/1.0/metrics", nil)
		if code != http.StatusOK || !bytes.Contains(body, []byte(`lxd_memory_RSS_bytes{name="c",project="default",type="container"}`)) {
			t.Fatalf("GET https://%s/1.0/metrics with the metrics certificate: %d %s", addr, code, tail(string(body), 5))
		}

		testutil.Promtool(t, body, metrics.PromtoolExceptions)
	}

	checkMetricsCertConfined(t, newHTTPSClient(t, apiAddr, cfg), newHTTPSClient(t, metricsAddr, cfg))

	t.Run("api-listener", func(t *testing.T) {
		checkPrometheusScrapes(t, "https://"+apiAddr+"/1.0/metrics", prom.certFile, prom.keyFile, caFile, server.DNSNames[0], "c")
	})

	t.Run("metrics-listener", func(t *testing.T) {
		checkPrometheusScrapes(t, "https://"+metricsAddr+"/1.0/metrics", prom.certFile, prom.keyFile, caFile, server.DNSNames[0], "c")
	})
}

// checkMetricsCertConfined: with a metrics certificate, everything of the API but
// /1.0/metrics and the untrusted set is refused (403, one line saying why), GET /1.0 is
// the untrusted view, and the metrics listener has nothing but /1.0/metrics (404).
func checkMetricsCertConfined(t *testing.T, onAPI, onMetrics *httpsClient) {
	t.Helper()
	const why = "not authorized: a metrics certificate may only read /1.0/metrics"
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/1.0/instances", nil},
		{"GET", "/1.0/instances/c", nil},
		{"GET", "/1.0/instances/c/state", nil},
		{"GET", "/1.0/instances/c/files?path=/etc/hostname", nil},
		{"POST", "/1.0/instances/c/exec", map[string]any{"command": []string{"true"}}},
		{"PUT", "/1.0/instances/c/state", map[string]any{"action": "stop", "force": true}},
		{"GET", "/1.0/certificates", nil},
		{"GET", "/1.0/events", nil},
		{"GET", "/1.0/operations", nil},
		{"PATCH", "/1.0", map[string]any{"config": map[string]string{"core.metrics_authentication": "false"}}},
		{"GET", "/1.0/no-such-thing", nil},
	} {
		code, body := onAPI.do(req.method, req.path, req.body)
		if env := envelope(t, body); code != http.StatusForbidden || env.Error != why {
			t.Errorf("metrics certificate: %s %s: %d %q, want 403 %q", req.method, req.path, code, env.Error, why)
		}
	}

	// POST /1.0/certificates is open to anyone with a token, so its handler refuses.
	code, body := onAPI.do("POST", "/1.0/certificates", map[string]any{"name": "more", "type": "client", "token": true})
	if env := envelope(t, body); code != http.StatusForbidden || !strings.HasPrefix(env.Error, "not authorized") {
		t.Errorf("metrics certificate asking for a token: %d %q, want 403", code, env.Error)
	}

	if auth := onAPI.authOf(); auth != "untrusted" {
		t.Errorf("metrics certificate: GET /1.0 says auth %q, want untrusted", auth)
	}

	for _, path := range []string{"/", "/1.0", "/1.0/instances", "/1.0/metrics/"} {
		if code, _ := onMetrics.do("GET", path, nil); code != http.StatusNotFound {
			t.Errorf("metrics listener: GET %s: %d, want 404", path, code)
		}
	}
}

// listenMetrics points core.metrics_address at a free loopback port and returns it.
func (d *daemon) listenMetrics() string {
	d.t.Helper()
	for try := 0; try < 5; try++ {
		addr := freeLoopbackAddr(d.t)
		code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.metrics_address":"`+addr+`"}}`))
		if code == http.StatusOK {
			return addr
		}

		if !strings.Contains(env.Error, "in use") {
			d.t.Fatalf("setting core.metrics_address: %d %s", code, env.Error)
		}
	}

	d.t.Fatal("no free port for core.metrics_address")
	return ""
}

// addCertificate trusts c's certificate as typ (client or metrics) through
// POST /1.0/certificates over the unix socket.
func (d *daemon) addCertificate(c testCert, name, typ string) {
	d.t.Helper()
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.tls.Certificate[0]})
	body, _ := json.Marshal(map[string]any{"name": name, "type": typ, "certificate": string(block)})
	if code, env := d.raw("POST", "/1.0/certificates", bytes.NewReader(body)); code != http.StatusCreated && code != http.StatusOK {
		d.t.Fatalf("adding a %s certificate: %d %s", typ, code, env.Error)
	}
}

// checkPrometheusScrapes starts a Prometheus (own data directory, a free loopback port)
// that scrapes metricsURL over HTTPS with the client certificate certFile/keyFile, trusting
// the server certificate in caFile under the name serverName, and waits until its query
// API returns lxd_memory_RSS_bytes{name=instance} above zero and up == 1.
func checkPrometheusScrapes(t *testing.T, metricsURL, certFile, keyFile, caFile, serverName, instance string) {
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
	tlsConf := fmt.Sprintf("{cert_file: %q, key_file: %q, ca_file: %q, server_name: %q}", certFile, keyFile, caFile, serverName)

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

// testCert is a self-signed client certificate written to files.
type testCert struct {
	certFile, keyFile string
	tls               tls.Certificate
}

// writeCert makes a self-signed ECDSA P-384 client certificate (LXD's kind) in dir.
func writeCert(t *testing.T, dir, name string) testCert {
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
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	c := testCert{certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key")}
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
