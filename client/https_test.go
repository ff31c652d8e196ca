package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
)

// tlsServer serves a minimal GET /1.0 over TLS; tweak adjusts its TLS
// configuration before it starts.
func tlsServer(t *testing.T, tweak func(*tls.Config)) *httptest.Server {
	t.Helper()

	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := "untrusted"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			auth = "trusted"
		}

		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type":"sync","status":"Success","status_code":200,"metadata":{"auth":"` + auth + `","auth_methods":["tls"]}}`))
	}))
	s.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	if tweak != nil {
		tweak(s.TLS)
	}

	s.StartTLS()
	t.Cleanup(s.Close)

	return s
}

// The pinned certificate is the only one accepted: the right pin connects
// (without any CA or name check), another server's certificate is refused.
func TestHTTPSPinning(t *testing.T) {
	ctx := context.Background()
	s := tlsServer(t, nil)
	// httptest servers share one certificate: the other gets its own.
	otherCert, otherKey := testClientCert(t)
	other := tlsServer(t, func(c *tls.Config) {
		pair, err := tls.X509KeyPair(otherCert, otherKey)
		if err != nil {
			t.Fatal(err)
		}

		c.Certificates = []tls.Certificate{pair}
	})

	cert, err := client.GetServerCertificate(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}

	if !cert.Equal(s.Certificate()) {
		t.Fatal("GetServerCertificate returned another certificate")
	}

	pin := client.EncodeCertificate(cert)

	c, err := client.ConnectHTTPS(s.URL, client.HTTPSArgs{ServerCert: pin})
	if err != nil {
		t.Fatal(err)
	}

	srv, _, err := c.GetServer(ctx)
	if err != nil {
		t.Fatalf("pinned server: %v", err)
	}

	if srv.Auth != "untrusted" {
		t.Errorf("without a client certificate auth is %q", srv.Auth)
	}

	c, err = client.ConnectHTTPS(other.URL, client.HTTPSArgs{ServerCert: pin})
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = c.GetServer(ctx)
	var mismatch *client.CertificateMismatchError
	if !errors.As(err, &mismatch) || mismatch.Want != client.Fingerprint(cert) {
		t.Errorf("other server with the pin: %v", err)
	}

	// Without a pin the system roots do not know the test CA.
	c, err = client.ConnectHTTPS(s.URL, client.HTTPSArgs{})
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = c.GetServer(ctx)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("unknown CA without a pin: %v", err)
	}
}

// TLS 1.2 is refused, like the 5.0 client does.
func TestHTTPSRefusesTLS12(t *testing.T) {
	s := tlsServer(t, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })

	_, err := client.GetServerCertificate(context.Background(), s.URL)
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 server: %v", err)
	}
}

// The client certificate is presented.
func TestHTTPSClientCertificate(t *testing.T) {
	ctx := context.Background()
	s := tlsServer(t, nil)

	certPEM, keyPEM := testClientCert(t)
	pin := client.EncodeCertificate(s.Certificate())

	c, err := client.ConnectHTTPS(s.URL, client.HTTPSArgs{ClientCert: certPEM, ClientKey: keyPEM, ServerCert: pin})
	if err != nil {
		t.Fatal(err)
	}

	srv, _, err := c.GetServer(ctx)
	if err != nil || srv.Auth != "trusted" {
		t.Errorf("with a client certificate: %v, %v", srv, err)
	}

	if !strings.HasPrefix(c.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %q", c.URL())
	}
}
