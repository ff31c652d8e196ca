package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// fakeAPI serves d's router on a unix socket for the test and returns a caller: method,
// path, body (JSON, "" for none) and extra headers → status, envelope, headers.
func fakeAPI(t *testing.T, d *Daemon) func(method, path, body string, hdr ...string) (int, api.Response, http.Header) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	srv := d.unixServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	return func(method, path, body string, hdr ...string) (int, api.Response, http.Header) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}

		req, err := http.NewRequest(method, "http://unix.socket"+path, rd)
		if err != nil {
			t.Fatal(err)
		}

		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}

		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}

		defer func() { _ = resp.Body.Close() }()
		var env api.Response
		_ = json.NewDecoder(resp.Body).Decode(&env)
		return resp.StatusCode, env, resp.Header
	}
}

func newFakeClusterDaemon(t *testing.T, members ...fakeMember) *Daemon {
	t.Helper()
	cfg := fakeConfig{Dir: t.TempDir(), Cluster: members}
	cfg.Images = append(cfg.Images, struct {
		Fingerprint string   `json:"fingerprint"`
		Aliases     []string `json:"aliases"`
	}{Fingerprint: strings.Repeat("ab", 32), Aliases: []string{"img"}})

	d, err := newFakeDaemon(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.db.Close() })
	return d
}

var threeMembers = []fakeMember{
	{Name: "m1", Address: "10.251.0.1:8443"},
	{Name: "m2", Address: "10.251.0.2:8443", Offline: true},
	{Name: "m3", Address: "10.251.0.3:8443", Evacuated: true},
	{Name: "m4", Address: "10.251.0.4:8443"},
}

func TestClusterMembersGet(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)

	code, env, _ := call("GET", "/1.0/cluster/members", "")
	var urls []string
	_ = json.Unmarshal(env.Metadata, &urls)
	want := []string{"/1.0/cluster/members/m1", "/1.0/cluster/members/m2", "/1.0/cluster/members/m3", "/1.0/cluster/members/m4"}
	if code != http.StatusOK || !reflect.DeepEqual(urls, want) {
		t.Fatalf("GET members: %d %v %s", code, urls, env.Error)
	}

	code, env, _ = call("GET", "/1.0/cluster/members?recursion=1", "")
	var ms []api.ClusterMember
	_ = json.Unmarshal(env.Metadata, &ms)
	if code != http.StatusOK || len(ms) != 4 {
		t.Fatalf("GET members?recursion=1: %d %+v %s", code, ms, env.Error)
	}

	type row struct {
		name, url, status string
		roles             []string
		database          bool
	}
	wantRows := []row{
		{"m1", "https://10.251.0.1:8443", "Online", []string{"database", "database-leader"}, true},
		{"m2", "https://10.251.0.2:8443", "Offline", []string{"database"}, true},
		{"m3", "https://10.251.0.3:8443", "Evacuated", []string{"database"}, true},
		{"m4", "https://10.251.0.4:8443", "Online", []string{"database-standby"}, false},
	}
	for i, w := range wantRows {
		got := row{ms[i].ServerName, ms[i].URL, ms[i].Status, ms[i].Roles, ms[i].Database}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("member %d = %+v, want %+v", i, got, w)
		}
	}

	if !strings.HasPrefix(ms[1].Message, "No heartbeat for 1m") || ms[0].Message != "Fully operational" || ms[3].Architecture != "x86_64" {
		t.Errorf("messages/arch: %q %q %q", ms[1].Message, ms[0].Message, ms[3].Architecture)
	}

	code, env, hdr := call("GET", "/1.0/cluster/members/m4", "")
	var m api.ClusterMember
	_ = json.Unmarshal(env.Metadata, &m)
	if code != http.StatusOK || m.ServerName != "m4" || hdr.Get("ETag") == "" || m.FailureDomain != "default" {
		t.Errorf("GET m4: %d %+v %s", code, m, env.Error)
	}

	code, env, _ = call("GET", "/1.0/cluster/members/nope", "")
	if code != http.StatusNotFound || !strings.Contains(env.Error, `"nope"`) {
		t.Errorf("GET of a missing member: %d %s", code, env.Error)
	}
}

// A host never clustered shows its one member, "none", online, and refuses rename and
// removal.
func TestClusterMembersUnclustered(t *testing.T) {
	d := newFakeClusterDaemon(t)
	call := fakeAPI(t, d)

	code, env, _ := call("GET", "/1.0/cluster/members?recursion=1", "")
	var ms []api.ClusterMember
	_ = json.Unmarshal(env.Metadata, &ms)
	if code != http.StatusOK || len(ms) != 1 || ms[0].ServerName != "none" || ms[0].Status != "Online" || ms[0].URL != "" ||
		ms[0].Roles == nil || ms[0].Architecture == "" {
		t.Fatalf("GET members unclustered: %d %+v %s", code, ms, env.Error)
	}

	for _, c := range [][2]string{{"POST", `{"server_name":"x"}`}, {"DELETE", ""}} {
		code, env, _ = call(c[0], "/1.0/cluster/members/none", c[1])
		if code != http.StatusBadRequest || !strings.Contains(env.Error, "not clustered") {
			t.Errorf("%s unclustered: %d %s", c[0], code, env.Error)
		}
	}
}

func TestClusterMemberPutPatch(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)

	get := func(name string) (api.ClusterMember, string) {
		t.Helper()
		_, env, hdr := call("GET", "/1.0/cluster/members/"+name, "")
		var m api.ClusterMember
		_ = json.Unmarshal(env.Metadata, &m)
		return m, hdr.Get("ETag")
	}

	cur, tag := get("m2")
	w := cur.Writable()
	w.Description, w.FailureDomain = "rack 2", "az-b"
	body, _ := json.Marshal(w)
	code, env, _ := call("PUT", "/1.0/cluster/members/m2", string(body), "If-Match", tag)
	if code != http.StatusOK {
		t.Fatalf("PUT with roles sent back: %d %s", code, env.Error)
	}

	got, _ := get("m2")
	if got.Description != "rack 2" || got.FailureDomain != "az-b" {
		t.Errorf("after PUT: %+v", got)
	}

	code, env, _ = call("PUT", "/1.0/cluster/members/m2", `{"description":"x"}`, "If-Match", tag)
	if code != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale ETag: %d %s", code, env.Error)
	}

	code, env, _ = call("PATCH", "/1.0/cluster/members/m2", `{"description":"patched"}`)
	got, _ = get("m2")
	if code != http.StatusOK || got.Description != "patched" || got.FailureDomain != "az-b" {
		t.Errorf("PATCH description: %d %s %+v", code, env.Error, got)
	}

	code, env, _ = call("PUT", "/1.0/cluster/members/m2", `{"description":"d"}`)
	got, _ = get("m2")
	if code != http.StatusOK || got.FailureDomain != "default" {
		t.Errorf("PUT without failure_domain: %d %s %+v, want it back to default", code, env.Error, got)
	}

	bad := map[string]string{
		`{"roles":["database-leader","database"]}`:            "read only",
		`{"config":{"scheduler.instance":"manual"}}`:          "config",
		`{"failure_domain":"a/b"}`:                            "not allowed",
		`{"description":"` + strings.Repeat("x", 5000) + `"}`: "longer",
		`{"groups":["gpu"]}`:                                  `cluster group "gpu" not found`,
		`nope`:                                                "",
	}
	for b, msg := range bad {
		code, env, _ = call("PUT", "/1.0/cluster/members/m2", b)
		if code != http.StatusBadRequest || !strings.Contains(env.Error, msg) {
			t.Errorf("PUT %.40s: %d %s, want 400 mentioning %q", b, code, env.Error, msg)
		}
	}

	after, _ := get("m2")
	if after.Description != "d" || after.FailureDomain != "default" {
		t.Errorf("a refused PUT changed the member: %+v", after)
	}

	code, _, _ = call("PUT", "/1.0/cluster/members/nope", `{}`)
	if code != http.StatusNotFound {
		t.Errorf("PUT of a missing member: %d", code)
	}
}

func TestClusterMemberRename(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)

	ctx := context.Background()
	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		m, err := tx.ClusterMember(ctx, "m4")
		if err != nil {
			return err
		}

		_, err = tx.CreateInstance(ctx, db.Instance{Name: "c1", Type: "container", MemberID: m.ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	code, env, hdr := call("POST", "/1.0/cluster/members/m4", `{"server_name":"m5"}`)
	if code != http.StatusCreated || hdr.Get("Location") != "/1.0/cluster/members/m5" {
		t.Fatalf("rename: %d %s %v", code, env.Error, hdr)
	}

	_ = d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		inst, err := tx.GetInstance(ctx, "c1")
		if err != nil || inst.Location != "m5" {
			t.Errorf("instance location after rename = %+v, %v", inst, err)
		}

		m, err := tx.ClusterMember(ctx, "m5")
		if err != nil || m.Address != "10.251.0.4:8443" {
			t.Errorf("renamed member changed more than its name: %+v, %v", m, err)
		}

		return nil
	})

	// Renaming this member: its own record (Self, GET /1.0's server_name) follows.
	code, env, _ = call("POST", "/1.0/cluster/members/m1", `{"server_name":"m0"}`)
	if code != http.StatusCreated || d.memberSvc().Self().Name != "m0" {
		t.Fatalf("rename of this member: %d %s, self is %q", code, env.Error, d.memberSvc().Self().Name)
	}

	_, env, _ = call("GET", "/1.0", "")
	var srv api.Server
	_ = json.Unmarshal(env.Metadata, &srv)
	if srv.Environment.ServerName != "m0" || !srv.Environment.ServerClustered {
		t.Errorf("GET /1.0 after renaming this member: %q clustered %v", srv.Environment.ServerName, srv.Environment.ServerClustered)
	}

	cases := []struct {
		path, body string
		code       int
	}{
		{"/1.0/cluster/members/m5", `{"server_name":"m0"}`, http.StatusConflict},
		{"/1.0/cluster/members/nope", `{"server_name":"m9"}`, http.StatusNotFound},
		{"/1.0/cluster/members/m5", `{"server_name":"none"}`, http.StatusBadRequest},
		{"/1.0/cluster/members/m5", `{"server_name":"a/b"}`, http.StatusBadRequest},
		{"/1.0/cluster/members/m5", `{"server_name":""}`, http.StatusBadRequest},
	}
	for _, c := range cases {
		code, env, _ = call("POST", c.path, c.body)
		if code != c.code {
			t.Errorf("POST %s %s: %d %s, want %d", c.path, c.body, code, env.Error, c.code)
		}
	}
}

func TestClusterMemberDelete(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)
	fm := d.membership.(*fakeMembership)
	ctx := context.Background()

	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		m, err := tx.ClusterMember(ctx, "m2")
		if err != nil {
			return err
		}

		_, err = tx.CreateInstance(ctx, db.Instance{Name: "busy", Type: "container", MemberID: m.ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	code, env, _ := call("DELETE", "/1.0/cluster/members/m2", "")
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "1 instances") || len(fm.removed) != 0 {
		t.Fatalf("DELETE of a member with instances: %d %s, raft removals %v", code, env.Error, fm.removed)
	}

	code, env, _ = call("DELETE", "/1.0/cluster/members/m1", "")
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "this server") {
		t.Errorf("DELETE of self: %d %s", code, env.Error)
	}

	code, _, _ = call("DELETE", "/1.0/cluster/members/nope", "")
	if code != http.StatusNotFound {
		t.Errorf("DELETE of a missing member: %d", code)
	}

	fm.removeErr = errors.New("no quorum")
	code, env, _ = call("DELETE", "/1.0/cluster/members/m4", "")
	if code != http.StatusInternalServerError || !strings.Contains(env.Error, "no quorum") {
		t.Errorf("DELETE when raft refuses: %d %s", code, env.Error)
	}

	fm.removeErr = nil
	code, env, _ = call("DELETE", "/1.0/cluster/members/m4", "")
	if code != http.StatusOK || !reflect.DeepEqual(fm.removed, []string{"10.251.0.4:8443", "10.251.0.4:8443"}) {
		t.Errorf("DELETE of an empty member: %d %s, raft removals %v", code, env.Error, fm.removed)
	}

	fm.removeErr = errors.New("gone")
	code, env, _ = call("DELETE", "/1.0/cluster/members/m2?force=1", "")
	if code != http.StatusOK {
		t.Fatalf("forced DELETE: %d %s", code, env.Error)
	}

	_ = d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ms, _ := tx.ClusterMembers(ctx)
		if len(ms) != 2 || ms[0].Name != "m1" || ms[1].Name != "m3" {
			t.Errorf("members after removals: %+v", ms)
		}

		ok, _ := tx.InstanceExists(ctx, "busy")
		if ok {
			t.Error("forced removal left the member's instance row")
		}

		return nil
	})
}
