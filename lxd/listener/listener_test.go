package listener

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testEndpoint runs an endpoint answering "ok" (and, on /hijack, holding the
// connection open) with the given limits on a free loopback port.
func testEndpoint(t *testing.T, lim Limits) (*Endpoint, *Cert) {
	t.Helper()
	cert, err := LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = c.Write([]byte("hijacked\n"))
			}

			return
		}

		_, _ = io.WriteString(w, "ok")
	})

	e := New(Config{Name: "test", Handler: h, TLS: ServerTLSConfig(cert), Log: slog.New(slog.DiscardHandler), Limits: lim})
	err = e.Set("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(e.Close)
	return e, cert
}

func clientTLS(cert *Cert, maxVersion uint16) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert.KeyPair.Leaf)
	return &tls.Config{RootCAs: pool, ServerName: cert.KeyPair.Leaf.DNSNames[0], MaxVersion: maxVersion}
}

func get(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		return "", err
	}

	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestTLS13Only(t *testing.T) {
	e, cert := testEndpoint(t, Limits{})
	addr := e.Addr().String()

	body, err := get(t, addr, clientTLS(cert, 0))
	if err != nil || body != "ok" {
		t.Fatalf("TLS 1.3 client: %q, %v", body, err)
	}

	_, err = get(t, addr, clientTLS(cert, tls.VersionTLS12))
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 client: %v, want a protocol version failure", err)
	}
}

func TestPlainHTTPGetsAnAnswer(t *testing.T) {
	e, _ := testEndpoint(t, Limits{})
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}

	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP: %d %q", resp.StatusCode, body)
	}
}

func TestMoveAndStop(t *testing.T) {
	e, cert := testEndpoint(t, Limits{})
	old := e.Addr().String()

	// Hold a hijacked connection (a websocket, say) on the old listener.
	conn, err := tls.Dial("tcp", old, clientTLS(cert, 0))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}

	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "hijacked\n" {
		t.Fatalf("hijack: %q, %v", line, err)
	}

	// A busy address is refused and the listener stays where it was.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = busy.Close() }()
	err = e.Set(busy.Addr().String())
	if err == nil || e.Addr().String() != old {
		t.Fatalf("moving onto a busy port: %v, now on %v", err, e.Addr())
	}

	err = e.Set("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	body, err := get(t, e.Addr().String(), clientTLS(cert, 0))
	if err != nil || body != "ok" {
		t.Fatalf("new address: %q, %v", body, err)
	}

	waitRefused(t, old)

	// The hijacked connection of the old listener is closed too.
	_ = conn.SetReadDeadline(time.Now().Add(stopGrace + 5*time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("hijacked connection still open after the listener moved")
	}

	now := e.Addr().String()
	err = e.Set("")
	if err != nil || e.Addr() != nil {
		t.Fatalf("stop: %v, %v", err, e.Addr())
	}

	waitRefused(t, now)
}

func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}

		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}

		time.Sleep(50 * time.Millisecond)
	}
}

// A connection that never completes its handshake is closed after HeaderTimeout.
func TestSilentConnectionClosed(t *testing.T) {
	e, _ := testEndpoint(t, Limits{HeaderTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = c.Close() }()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("silent connection not closed by the server: %v", err)
	}

	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// One address cannot hold more than MaxConnsPerIP connections; others still get in.
func TestPerAddressCap(t *testing.T) {
	e, cert := testEndpoint(t, Limits{MaxConnsPerIP: 3, MaxConns: 5})
	addr := e.Addr().String()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()

	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}

		held = append(held, c)
	}

	// The first three are held open (until the header timeout); the others are closed.
	closed := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			closed++
		}
	}

	if closed != 7 {
		t.Fatalf("%d of 10 connections closed, want 7", closed)
	}

	// Another source address is served although 127.0.0.1 holds its share.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(cert, 0), DialContext: d.DialContext}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}

	_ = resp.Body.Close()
}
