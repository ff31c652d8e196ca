package main

import (
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

// /internal/ answers cluster members only (a caller presenting the cluster
// certificate), whatever else the caller is trusted with; the accept call is the one
// exception, authenticated by its join secret in the handler.
func TestInternalEndpointsMembersOnly(t *testing.T) {
	d := &Daemon{config: map[string]string{}}
	memberOnly := APIEndpoint{Path: "internal/cluster/heartbeat", Put: clusterGet}
	var accept APIEndpoint
	for _, ep := range internalEndpoints {
		if ep.Path == "internal/cluster/accept" {
			accept = ep
		}
	}

	member := trust.Caller{Via: trust.ViaTLS, Trusted: true, Member: true, Cert: trust.Entry{Type: api.CertificateTypeServer}}
	admin := trust.Caller{Via: trust.ViaTLS, Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeClient}}
	anon := trust.Caller{Via: trust.ViaTLS}
	cases := []struct {
		who  string
		c    trust.Caller
		ep   APIEndpoint
		want bool
	}{
		{"member", member, memberOnly, true},
		{"admin client certificate", admin, memberOnly, false},
		{"anonymous", anon, memberOnly, false},
		{"anonymous accept", anon, accept, true},
		{"unix", trust.Caller{Via: trust.ViaUnix}, memberOnly, true},
	}

	for _, tc := range cases {
		method := "PUT"
		if tc.ep.Post != nil {
			method = "POST"
		}

		r := httptest.NewRequest(method, "/"+tc.ep.Path, nil)
		if got := d.allowed(tc.ep, tc.c, r); got != tc.want {
			t.Errorf("%s %s %s: allowed %v, want %v", tc.who, method, tc.ep.Path, got, tc.want)
		}
	}

	if !member.Admin() {
		t.Error("a member is not fully trusted")
	}
}
