package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// expirySnapshots is a snapshotService with one snapshot, c/s, whose expiry SetExpiry
// changes; the rest is not used here.
type expirySnapshots struct {
	snapshotService
	expires time.Time
}

func (f *expirySnapshots) Get(_ context.Context, name, snap string) (*api.InstanceSnapshot, error) {
	if name != "c" || snap != "s" {
		return nil, api.StatusErrorf(http.StatusNotFound, "snapshot not found")
	}

	return &api.InstanceSnapshot{Name: "s", ExpiresAt: f.expires}, nil
}

func (f *expirySnapshots) SetExpiry(_ context.Context, _, _ string, t time.Time) error {
	f.expires = t
	return nil
}

// TestSnapshotPutPatch: PUT sets expires_at (absent: never), PATCH keeps it when the body
// lacks it, a malformed body or stale If-Match changes nothing.
func TestSnapshotPutPatch(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ev := events.NewServer(log)
	snaps := &expirySnapshots{}
	d := &Daemon{log: log, events: ev, ops: operations.NewRegistry(ev, log), snapshots: snaps}

	send := func(method, snap, body, ifMatch string) int {
		t.Helper()
		r := httptest.NewRequest(method, "/1.0/instances/c/snapshots/"+snap, strings.NewReader(body))
		r = mux.SetURLVars(r, map[string]string{"name": "c", "snap": snap})
		if ifMatch != "" {
			r.Header.Set("If-Match", ifMatch)
		}

		h := instanceSnapshotPut
		if method == http.MethodPatch {
			h = instanceSnapshotPatch
		}

		w := httptest.NewRecorder()
		d.render(w, r, h(d, r))
		if w.Code == http.StatusAccepted {
			for _, op := range d.ops.List() {
				_ = op.Wait(context.Background())
			}
		}

		return w.Code
	}

	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if code := send(http.MethodPut, "s", `{"expires_at":"2030-01-02T03:04:05Z"}`, ""); code != http.StatusAccepted {
		t.Fatalf("PUT: %d", code)
	}

	if !snaps.expires.Equal(when) {
		t.Fatalf("PUT: expiry %v, want %v", snaps.expires, when)
	}

	if code := send(http.MethodPatch, "s", `{}`, ""); code != http.StatusAccepted || !snaps.expires.Equal(when) {
		t.Fatalf("PATCH {}: %d, expiry %v, want it kept", code, snaps.expires)
	}

	for _, bad := range []string{`{"expires_at":"tomorrow"}`, `{"expires_at":5}`, `[`} {
		for _, m := range []string{http.MethodPut, http.MethodPatch} {
			if code := send(m, "s", bad, ""); code != http.StatusBadRequest {
				t.Errorf("%s %s: %d, want 400", m, bad, code)
			}
		}
	}

	if code := send(http.MethodPut, "s", `{}`, `"stale"`); code != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale If-Match: %d, want 412", code)
	}

	if !snaps.expires.Equal(when) {
		t.Fatalf("refused requests changed the expiry to %v", snaps.expires)
	}

	if code := send(http.MethodPut, "nope", `{}`, ""); code != http.StatusNotFound {
		t.Errorf("PUT of a missing snapshot: %d, want 404", code)
	}

	if code := send(http.MethodPut, "s", `{}`, ""); code != http.StatusAccepted || !snaps.expires.IsZero() {
		t.Fatalf("PUT {}: %d, expiry %v, want none", code, snaps.expires)
	}
}
