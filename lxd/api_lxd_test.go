package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// What LXD has and Berth does not serve answers 501 naming the work that brings it, under
// /1.0/instances and /1.0/containers alike; a method LXD does not have stays 405 and a
// path outside LXD's API stays 404. (test/parity checks every operation of LXD's API.)
func TestUnservedLXDOperations(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	srv := d.unixServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	cases := []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/1.0/network-zones", 501, "GET /1.0/network-zones is not implemented in Berth (network zones (DNS) are not planned)"},
		{"PUT", "/1.0/network-zones/z", 501, "network zones (DNS) are not planned"},
		{"HEAD", "/1.0/network-zones", 501, ""},
		{"GET", "/1.0/instances/c1/sftp", 501, "GET /1.0/instances/{name}/sftp is not implemented"},
		{"GET", "/1.0/containers/c1/sftp", 501, "GET /1.0/containers/{name}/sftp is not implemented"},
		{"PATCH", "/1.0/events", 405, "method PATCH is not allowed"},
		{"PUT", "/1.0/cluster/members/m1/state", 405, "not allowed"},
		{"GET", "/1.0/nowhere", 404, "unknown API path"},
		{"GET", "/1.0/containersx", 404, "unknown API path"},
		{"GET", "/1.0/storage-pools/p/volumes/custom/v/x/y", 404, "unknown API path"},
	}

	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://unix.socket"+tc.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}

		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()

		var env api.Response
		_ = json.Unmarshal(body, &env)
		if resp.StatusCode != tc.code || !strings.Contains(env.Error, tc.msg) {
			t.Errorf("%s %s: %d %q, want %d mentioning %q", tc.method, tc.path, resp.StatusCode, env.Error, tc.code, tc.msg)
		}

		if tc.method != "HEAD" && (env.Type != "error" || env.ErrorCode != tc.code) {
			t.Errorf("%s %s: not an LXD error envelope: %s", tc.method, tc.path, body)
		}
	}
}

// Every route of endpoints that LXD also has must be in LXD's table under the same
// methods: a handler for a method LXD lacks would be an invention, and a typo in a path
// would leave LXD's path answering 501 beside it.
func TestEndpointsAreLXDPaths(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range lxdAPI {
		if seen[routeKey(p.Path)] {
			t.Errorf("%q is twice in lxdAPI", p.Path)
		}

		seen[routeKey(p.Path)] = true
	}

	for _, ep := range endpoints {
		p, ok := lxdPathOf(ep.Path)
		if !ok {
			continue // Berth's own (internal/...)
		}

		for method, h := range map[string]handlerFunc{"GET": ep.Get, "PUT": ep.Put, "POST": ep.Post, "DELETE": ep.Delete, "PATCH": ep.Patch} {
			if h != nil && !strings.Contains(" "+p.Methods+" ", " "+method+" ") {
				t.Errorf("%s /1.0/%s is served but not in LXD's API", method, ep.Path)
			}
		}
	}
}
