package main

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

// The groups API on a member: create, list, get with ETag, PUT with LXD's rule (a member
// stays in at least one group), PATCH, rename, delete; members show their groups;
// refusals (bad names, unknown members, default, non-empty) change nothing.
func TestClusterGroupsAPI(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)

	code, env, _ := call("POST", "/1.0/cluster/groups", `{"name":"gpu","description":"GPUs","members":["m4"]}`)
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST group: %d %s", code, env.Error)
	}

	for body, want := range map[string]string{
		`{"name":"@x"}`:                      "only letters",
		`{"name":""}`:                        "1 to 63",
		`{"name":"a/b"}`:                     "only letters",
		`{"name":"gpu"}`:                     "already exists",
		`{"name":"x","members":["nope"]}`:    `cluster member "nope" not found`,
		`{"name":"x","members":["m1","m1"]}`: "twice",
	} {
		code, env, _ = call("POST", "/1.0/cluster/groups", body)
		if code < 400 || code >= 500 || !strings.Contains(env.Error, want) {
			t.Errorf("POST %s: %d %s, want a 4xx mentioning %q", body, code, env.Error, want)
		}
	}

	code, env, _ = call("GET", "/1.0/cluster/groups?recursion=1", "")
	var gs []api.ClusterGroup
	_ = json.Unmarshal(env.Metadata, &gs)
	want := []api.ClusterGroup{
		{Name: "default", ClusterGroupPut: api.ClusterGroupPut{Description: "Default cluster group", Members: []string{"m1", "m2", "m3", "m4"}}},
		{Name: "gpu", ClusterGroupPut: api.ClusterGroupPut{Description: "GPUs", Members: []string{"m4"}}},
	}
	if code != http.StatusOK || !reflect.DeepEqual(gs, want) {
		t.Fatalf("GET groups: %d %+v %s", code, gs, env.Error)
	}

	// m4 leaves default (it is in gpu); m1 cannot (default is its only group).
	code, env, _ = call("PUT", "/1.0/cluster/groups/default", `{"description":"all","members":["m2","m3"]}`)
	if code != http.StatusOK {
		t.Fatalf("PUT default: %d %s", code, env.Error)
	}

	code, env, _ = call("GET", "/1.0/cluster/members/m4", "")
	var m api.ClusterMember
	_ = json.Unmarshal(env.Metadata, &m)
	if code != http.StatusOK || !reflect.DeepEqual(m.Groups, []string{"gpu"}) {
		t.Errorf("m4's groups: %d %v", code, m.Groups)
	}

	code, env, _ = call("GET", "/1.0/cluster/members/m1", "")
	m = api.ClusterMember{}
	_ = json.Unmarshal(env.Metadata, &m)
	if !reflect.DeepEqual(m.Groups, []string{"default"}) {
		t.Errorf("m1's groups after it was left out of default, its only group: %v", m.Groups)
	}

	code, env, _ = call("PATCH", "/1.0/cluster/groups/gpu", `{"description":"fast"}`)
	code2, env2, hdr := call("GET", "/1.0/cluster/groups/gpu", "")
	var g api.ClusterGroup
	_ = json.Unmarshal(env2.Metadata, &g)
	if code != http.StatusOK || code2 != http.StatusOK || g.Description != "fast" || !reflect.DeepEqual(g.Members, []string{"m4"}) || hdr.Get("ETag") == "" {
		t.Errorf("PATCH gpu: %d %s; GET %+v", code, env.Error, g)
	}

	code, _, _ = call("PUT", "/1.0/cluster/groups/gpu", `{"description":"x","members":["m4"]}`, "If-Match", "nope")
	if code != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale ETag: %d", code)
	}

	refused := []struct {
		method, path, body string
		code               int
	}{
		{"DELETE", "/1.0/cluster/groups/default", "", http.StatusForbidden},
		{"POST", "/1.0/cluster/groups/default", `{"name":"other"}`, http.StatusForbidden},
		{"DELETE", "/1.0/cluster/groups/gpu", "", http.StatusBadRequest},
		{"DELETE", "/1.0/cluster/groups/nope", "", http.StatusNotFound},
		{"PUT", "/1.0/cluster/members/m4", `{"groups":["nope"]}`, http.StatusBadRequest},
		{"PUT", "/1.0/cluster/members/m4", `{"groups":[]}`, http.StatusBadRequest},
	}
	for _, r := range refused {
		code, env, _ = call(r.method, r.path, r.body)
		if code != r.code {
			t.Errorf("%s %s %s: %d %s, want %d", r.method, r.path, r.body, code, env.Error, r.code)
		}
	}

	code, env, _ = call("POST", "/1.0/cluster/groups/gpu", `{"name":"fast"}`)
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("rename gpu: %d %s", code, env.Error)
	}

	code, env, _ = call("PUT", "/1.0/cluster/members/m4", `{"groups":["default"]}`)
	if code != http.StatusOK {
		t.Fatalf("PUT m4 groups: %d %s", code, env.Error)
	}

	code, env, _ = call("DELETE", "/1.0/cluster/groups/fast", "")
	if code != http.StatusOK {
		t.Errorf("DELETE the emptied group: %d %s", code, env.Error)
	}
}

// ?target=@group places among the group's members: the least loaded online one not
// evacuated; an unknown group is a 404, a group whose members cannot take it a 503.
func TestPlaceInstanceGroup(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...) // m1 (self), m2 offline, m3 evacuated, m4
	ctx := context.Background()
	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.CreateClusterGroup(ctx, "g", "", []string{"m1", "m4"})
		if err == nil {
			err = tx.CreateClusterGroup(ctx, "down", "", []string{"m2", "m3"})
		}

		if err == nil {
			_, err = tx.CreateInstance(ctx, db.Instance{Name: "c1", Type: "container"})
		}

		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	m, err := d.placeInstance(ctx, "@g")
	if err != nil || m.Name != "m4" {
		t.Errorf("@g = %s, %v; want m4 (m1 holds c1)", m.Name, err)
	}

	_, err = d.placeInstance(ctx, "@nope")
	if !api.StatusErrorCheck(err, http.StatusNotFound) || !strings.Contains(err.Error(), `cluster group "nope" not found`) {
		t.Errorf("@nope: %v, want 404", err)
	}

	_, err = d.placeInstance(ctx, "@down")
	if !api.StatusErrorCheck(err, http.StatusServiceUnavailable) || !strings.Contains(err.Error(), "m2 is offline") {
		t.Errorf("@down: %v, want 503 saying why", err)
	}

	u := newFakeClusterDaemon(t)
	_, err = u.placeInstance(ctx, "@default")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Errorf("@default unclustered: %v, want 400", err)
	}
}

// Unclustered, the groups and certificate endpoints say so; a PUT of the cluster
// certificate with garbage is a 400 naming the problem.
func TestClusterGroupsCertUnclustered(t *testing.T) {
	call := fakeAPI(t, newFakeClusterDaemon(t))
	for _, c := range [][3]string{
		{"GET", "/1.0/cluster/groups", ""},
		{"POST", "/1.0/cluster/groups", `{"name":"x"}`},
		{"PUT", "/1.0/cluster/certificate", `{"cluster_certificate":"x","cluster_certificate_key":"y"}`},
	} {
		code, env, _ := call(c[0], c[1], c[2])
		if code != http.StatusBadRequest || !strings.Contains(env.Error, "not clustered") {
			t.Errorf("%s %s unclustered: %d %s", c[0], c[1], code, env.Error)
		}
	}
}

// Who may replace the cluster certificate: an administrator (the unix socket, an
// unrestricted client certificate, a member); never a restricted certificate or an
// untrusted client. Its internal steps (which carry the key) answer members only, not
// even an administrator's certificate.
func TestClusterCertificateAccess(t *testing.T) {
	d := newFakeClusterDaemon(t)
	find := func(path string, eps []APIEndpoint) APIEndpoint {
		for _, ep := range eps {
			if ep.Path == path {
				return ep
			}
		}

		t.Fatalf("no endpoint %s", path)
		return APIEndpoint{}
	}

	pub := find("cluster/certificate", endpoints)
	internal := find("internal/cluster/certificate", internalEndpoints)
	admin := trust.Caller{Via: trust.ViaTLS, Trusted: true, Fingerprint: "a", Cert: trust.Entry{Type: api.CertificateTypeClient}}
	restricted := admin
	restricted.Cert.Restricted, restricted.Cert.Projects = true, []string{"default"}
	member := trust.Caller{Via: trust.ViaTLS, Trusted: true, Member: true, Fingerprint: "m"}
	untrusted := trust.Caller{Via: trust.ViaTLS, Fingerprint: "u"}
	r, _ := http.NewRequest(http.MethodPut, "/1.0/cluster/certificate", nil)
	for _, c := range []struct {
		name         string
		caller       trust.Caller
		pub, private bool
	}{
		{"unix", trust.Caller{Via: trust.ViaUnix}, true, true},
		{"admin cert", admin, true, false},
		{"member", member, true, true},
		{"restricted cert", restricted, false, false},
		{"untrusted", untrusted, false, false},
	} {
		if got := d.allowed(pub, c.caller, r); got != c.pub {
			t.Errorf("%s: PUT /1.0/cluster/certificate allowed = %v, want %v", c.name, got, c.pub)
		}

		if got := d.allowed(internal, c.caller, r); got != c.private {
			t.Errorf("%s: PUT /internal/cluster/certificate allowed = %v, want %v", c.name, got, c.private)
		}
	}
}

// Only the member that removed this one makes it leave: an administrator's PUT
// /1.0/cluster with enabled false is refused and changes nothing.
func TestClusterLeaveOnlyFromMember(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	for _, c := range []trust.Caller{{Via: trust.ViaUnix}, {Via: trust.ViaTLS, Trusted: true, Cert: trust.Entry{Type: api.CertificateTypeClient}}} {
		r, _ := http.NewRequest(http.MethodPut, "/1.0/cluster", strings.NewReader(`{"enabled":false}`))
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
		resp := clusterLeave(d, r)
		if !strings.Contains(resp.String(), "not supported") {
			t.Errorf("%s: leave answered %s, want a refusal", c, resp.String())
		}
	}
}
