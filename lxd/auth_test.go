package main

import (
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

func TestAccessPolicy(t *testing.T) {
	d := &Daemon{config: map[string]string{}}
	ep := map[string]APIEndpoint{}
	for _, e := range endpoints {
		ep[e.Path] = e
	}

	unix := trust.Caller{Via: trust.ViaUnix}
	admin := trust.Caller{Via: trust.ViaTLS, Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeClient}}
	metrics := trust.Caller{Via: trust.ViaTLS, Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeMetrics}}
	anon := trust.Caller{Via: trust.ViaTLS}
	untrustedCert := trust.Caller{Via: trust.ViaTLS, Fingerprint: "abcd"}
	unknown := trust.Caller{}
	tenant := trust.Caller{Via: trust.ViaTLS, Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeClient, Restricted: true, Projects: []string{"p1"}}}

	cases := []struct {
		who    string
		c      trust.Caller
		method string
		path   string
		target string
		want   bool
	}{
		{"unix", unix, "GET", "internal/debug/goroutines", "/", true},
		{"unix", unix, "PUT", "", "/", true},
		{"admin", admin, "PUT", "", "/", true},
		{"admin", admin, "DELETE", "certificates/{fingerprint}", "/", true},
		{"admin", admin, "GET", "internal/debug/goroutines", "/", false},
		{"admin", admin, "GET", "metrics", "/", true},
		{"metrics", metrics, "GET", "metrics", "/", true},
		{"metrics", metrics, "GET", "instances", "/", false},
		// Operations and events carry secrets (tokens, websockets): admins only.
		{"metrics", metrics, "GET", "operations", "/?recursion=1", false},
		{"metrics", metrics, "GET", "operations/{id}", "/", false},
		{"metrics", metrics, "GET", "events", "/", false},
		{"metrics", metrics, "POST", "instances/{name}/exec", "/", false},
		{"untrusted cert", untrustedCert, "GET", "metrics", "/", false},
		{"untrusted cert", untrustedCert, "GET", "operations", "/", false},
		{"metrics", metrics, "GET", "", "/", true}, // the untrusted set
		{"anon", anon, "GET", "", "/", true},
		{"anon", anon, "HEAD", "", "/", true},
		{"anon", anon, "PATCH", "", "/", false},
		{"anon", anon, "POST", "certificates", "/", true},
		{"anon", anon, "GET", "certificates", "/", false},
		{"anon", anon, "GET", "images", "/", true},
		{"anon", anon, "GET", "images/{fingerprint}/export", "/", true},
		{"anon", anon, "DELETE", "images/{fingerprint}", "/", false},
		{"anon", anon, "PATCH", "images/{fingerprint}", "/", false},
		{"anon", anon, "POST", "images/{fingerprint}/secret", "/", false},
		{"anon", anon, "POST", "images/{fingerprint}/refresh", "/", false},
		{"anon", anon, "GET", "operations/{id}/websocket", "/", true},
		{"anon", anon, "GET", "operations/{id}", "/", false},
		{"anon", anon, "GET", "events", "/", false},
		{"anon", anon, "GET", "metrics", "/", false},
		{"no connection information", unknown, "GET", "instances", "/", false},
		// A restricted certificate: its projects' instances (scopeProject checks the
		// project), reads of what they share, nothing of the server's.
		{"tenant", tenant, "POST", "instances", "/?project=p1", true},
		{"tenant", tenant, "POST", "instances/{name}/exec", "/?project=p1", true},
		{"tenant", tenant, "GET", "", "/", true},
		{"tenant", tenant, "PATCH", "", "/", false},
		{"tenant", tenant, "GET", "profiles", "/", true},
		{"tenant", tenant, "POST", "profiles", "/", false},
		{"tenant", tenant, "PUT", "networks/{name}", "/", false},
		{"tenant", tenant, "GET", "projects", "/", true},
		{"tenant", tenant, "POST", "projects", "/", false},
		{"tenant", tenant, "DELETE", "projects/{name}", "/", false},
		{"tenant", tenant, "GET", "certificates", "/", false},
		{"tenant", tenant, "GET", "metrics", "/", false},
		{"tenant", tenant, "GET", "internal/debug/goroutines", "/", false},
		{"tenant", tenant, "GET", "warnings", "/", false},
		{"tenant", tenant, "GET", "resources", "/", false},
	}

	for _, tc := range cases {
		e, ok := ep[tc.path]
		if !ok {
			t.Fatalf("no endpoint %q", tc.path)
		}

		r := httptest.NewRequest(tc.method, tc.target, nil)
		if got := d.allowed(e, tc.c, r); got != tc.want {
			t.Errorf("%s %s /1.0/%s%s: allowed %v, want %v", tc.who, tc.method, tc.path, tc.target, got, tc.want)
		}
	}

	// Scraping without authentication, when configured so.
	d.config["core.metrics_authentication"] = "false"
	if !d.allowed(ep["metrics"], anon, httptest.NewRequest("GET", "/", nil)) {
		t.Error("core.metrics_authentication=false still refuses untrusted scrapers")
	}
}

// A refused caller is told why in one line, LXD's "not authorized" first.
func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		c    trust.Caller
		want string
	}{
		{trust.Caller{Via: trust.ViaTLS}, "not authorized: this client sent no certificate"},
		{trust.Caller{Via: trust.ViaTLS, Fingerprint: "ab"}, "not authorized: the server doesn't trust this client's certificate"},
		{trust.Caller{Via: trust.ViaTLS, Fingerprint: "ab", Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeMetrics}}, "not authorized: a metrics certificate may only read /1.0/metrics"},
		{trust.Caller{}, "not authorized"},
	} {
		if got := refusal(tc.c).Error(); got != tc.want {
			t.Errorf("refusal(%v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}
