package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// A restricted client certificate cannot choose the member a new instance of its
// restricted project goes to, by name or by group (LXD's restricted.cluster.target,
// blocked in a restricted project): ?target= is a 403 on the member the client reached,
// before any placement or forwarding. Without a target the create is placed and
// forwarded as usual; an administrator may target.
func TestClusterCreateTargetRestricted(t *testing.T) {
	d, _, _, _ := clusterTestDaemon(t)
	ctx := context.Background()
	err := d.projects.Create(ctx, "tp", "", map[string]string{"restricted": "true", "features.images": "false"})
	if err != nil {
		t.Fatal(err)
	}

	tenant := trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1, Fingerprint: "ab", Trusted: true,
		Cert: trust.Entry{Type: api.CertificateTypeClient, Restricted: true, Projects: []string{"tp"}}}
	admin := trust.Caller{Via: trust.ViaUnix, UID: 0}
	ep := APIEndpoint{Path: collectionInstances}
	post := func(c trust.Caller, target string) (int, string, bool) {
		r := httptest.NewRequest(http.MethodPost, "/1.0/instances?project=tp&target="+target, strings.NewReader(`{"name":"x"}`))
		ctx := context.WithValue(project.WithContext(r.Context(), "tp"), callerKey{}, c)
		resp, ok := d.forwardIfRemote(ep, r.WithContext(ctx))
		if !ok {
			return 0, "", false
		}

		w := httptest.NewRecorder()
		d.render(w, r, resp)
		return w.Code, w.Body.String(), true
	}

	for _, target := range []string{"n2", "n1", "@default"} {
		code, body, ok := post(tenant, target)
		if !ok || code != http.StatusForbidden || !strings.Contains(body, "restricted") {
			t.Errorf("a restricted client's create with ?target=%s: handled %v, %d %s; want a 403", target, ok, code, body)
		}
	}

	// The administrator's is placed as it asks (forwarded to n1, or made here on n2).
	code, body, ok := post(admin, "n1")
	if !ok || code == http.StatusForbidden {
		t.Errorf("an administrator's create with ?target=n1: handled %v, %d %s", ok, code, body)
	}

	code, body, ok = post(admin, "n2")
	if ok && code == http.StatusForbidden {
		t.Errorf("an administrator's create with ?target=n2: handled %v, %d %s", ok, code, body)
	}

	// The tenant's create without a target is not refused for it.
	code, body, ok = post(tenant, "")
	if ok && code == http.StatusForbidden {
		t.Errorf("a restricted client's create without a target: %d %s", code, body)
	}
}
