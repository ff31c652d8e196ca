package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// A pinned server redirecting to another host over plain HTTP must not get the request
// body (a join token) resent there.
func TestHTTPSRefusesRedirects(t *testing.T) {
	got := make(chan string, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer plain.Close()

	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer s.Close()

	c, err := client.ConnectHTTPS(s.URL, client.HTTPSArgs{ServerCert: client.EncodeCertificate(s.Certificate())})
	if err != nil {
		t.Fatal(err)
	}

	err = c.CreateCertificate(context.Background(), api.CertificatesPost{Password: "SECRET-TOKEN"})
	if err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("want a refused redirect, got %v", err)
	}

	select {
	case b := <-got:
		t.Fatalf("the redirect target received %q", b)
	default:
	}
}

// A response larger than any envelope is refused, not read into memory whole.
func TestHTTPSCapsResponses(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type":"sync","metadata":"`))
		buf := []byte(strings.Repeat("A", 1<<20))
		for i := 0; i < 80; i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}

		_, _ = w.Write([]byte(`"}`))
	}))
	defer s.Close()

	c, err := client.ConnectHTTPS(s.URL, client.HTTPSArgs{ServerCert: client.EncodeCertificate(s.Certificate())})
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = c.GetServer(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("want an oversized response refused, got %v", err)
	}
}
