package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClusterMoveChecks: POST /1.0/instances/{name}?target= with migration on the member
// the instance is on refuses, before any work and with nothing changed, an unknown
// member (404), an offline one (503), an evacuated one (400), the member it is on (400),
// a move combined with a pool move, a bad new name, and a running instance (400).
func TestClusterMoveChecks(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)
	code, env, _ := call("POST", "/1.0/instances?target=m1", `{"name":"c1","source":{"type":"image","alias":"img"}}`)
	if code != http.StatusAccepted {
		t.Fatalf("create c1: %d %s", code, env.Error)
	}

	code, env, _ = call("GET", env.Operation+"/wait?timeout=10", "")
	if code != http.StatusOK {
		t.Fatalf("create c1: %d %s", code, env.Error)
	}

	move := `{"migration":true}`
	for _, c := range []struct {
		query, body string
		code        int
		want        string
	}{
		{"target=nope", move, http.StatusNotFound, `"nope"`},
		{"target=m2", move, http.StatusServiceUnavailable, `"m2"`},
		{"target=m3", move, http.StatusBadRequest, `"m3"`},
		{"target=m1", move, http.StatusBadRequest, `already on cluster member "m1"`},
		{"target=m4", `{"migration":true,"pool":"other"}`, http.StatusBadRequest, "two steps"},
		{"target=m4", `{"migration":true,"name":"bad/name"}`, http.StatusBadRequest, "invalid instance name"},
	} {
		code, env, _ := call("POST", "/1.0/instances/c1?"+c.query, c.body)
		if code != c.code || !strings.Contains(env.Error, c.want) {
			t.Errorf("%s %s: %d %q, want %d %q", c.query, c.body, code, env.Error, c.code, c.want)
		}
	}

	code, env, _ = call("PUT", "/1.0/instances/c1/state", `{"action":"start"}`)
	if code == http.StatusAccepted {
		_, _, _ = call("GET", env.Operation+"/wait?timeout=10", "")
	}

	code, env, _ = call("POST", "/1.0/instances/c1?target=m4", move)
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "running") {
		t.Errorf("moving running c1: %d %q", code, env.Error)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.instances.Get(ctx, "c1", false)
	if err != nil {
		t.Errorf("c1 after the refused moves: %v", err)
	}
}
