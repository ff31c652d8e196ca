package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// TestAliasPatch: PATCH changes only the fields the body has, and a bad body (no
// target, unknown target, malformed) is 400 and changes nothing.
func TestAliasPatch(t *testing.T) {
	fpA, fpB := strings.Repeat("aa", 32), strings.Repeat("bb", 32)
	cfg := fakeConfig{Dir: t.TempDir()}
	cfg.Images = append(cfg.Images, struct {
		Fingerprint string   `json:"fingerprint"`
		Aliases     []string `json:"aliases"`
	}{Fingerprint: fpA, Aliases: []string{"web"}}, struct {
		Fingerprint string   `json:"fingerprint"`
		Aliases     []string `json:"aliases"`
	}{Fingerprint: fpB})

	d, err := newFakeDaemon(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.db.Close() })

	patch := func(body string) int {
		r := httptest.NewRequest(http.MethodPatch, "/1.0/images/aliases/web", strings.NewReader(body))
		r = mux.SetURLVars(r, map[string]string{"name": "web"})
		w := httptest.NewRecorder()
		d.render(w, r, aliasPatch(d, r))
		return w.Code
	}

	check := func(step, target, desc string) {
		t.Helper()
		a, err := d.images.Alias(context.Background(), "default", "web")
		if err != nil {
			t.Fatal(err)
		}

		if a.Target != target || a.Description != desc {
			t.Fatalf("%s: alias is %q %q, want %q %q", step, a.Target, a.Description, target, desc)
		}
	}

	if code := patch(`{"description":"front"}`); code != http.StatusOK {
		t.Fatalf("PATCH description: %d", code)
	}

	check("description only", fpA, "front")

	if code := patch(`{"target":"` + fpB[:12] + `"}`); code != http.StatusOK {
		t.Fatalf("PATCH target: %d", code)
	}

	check("target only", fpB, "front")

	for _, bad := range []string{`{"target":""}`, `{"target":"cc"}`, `{"target":1}`, `nope`} {
		if code := patch(bad); code != http.StatusBadRequest {
			t.Errorf("PATCH %s: %d, want 400", bad, code)
		}
	}

	check("after bad bodies", fpB, "front")

	r := httptest.NewRequest(http.MethodPatch, "/1.0/images/aliases/none", strings.NewReader(`{"description":"x"}`))
	r = mux.SetURLVars(r, map[string]string{"name": "none"})
	w := httptest.NewRecorder()
	d.render(w, r, aliasPatch(d, r))
	if w.Code != http.StatusNotFound {
		t.Errorf("PATCH of a missing alias: %d, want 404", w.Code)
	}
}
