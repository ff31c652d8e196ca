package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInstancesListOmit: ?omit= leaves the config or the devices (local and expanded)
// out of a list at either recursion, after the filter has read them; anything else it
// names is a 400.
func TestInstancesListOmit(t *testing.T) {
	cfg := fakeConfig{Dir: t.TempDir()}
	cfg.Instances = append(cfg.Instances, struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}{"web", "Running"}, struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}{"db", "Stopped"})

	d, err := newFakeDaemon(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.db.Close() })

	fi := d.instances.(*fakeInstances)
	fi.mu.Lock()
	fi.instances["web"].Config["user.role"] = "front"
	fi.instances["web"].ExpandedConfig["user.role"] = "front"
	fi.mu.Unlock()

	get := func(query string) (int, []map[string]any, string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/1.0/instances?"+query, nil)
		w := httptest.NewRecorder()
		d.render(w, r, instancesGet(d, r))
		var env struct {
			Metadata []map[string]any `json:"metadata"`
			Error    string           `json:"error"`
		}

		err := json.Unmarshal(w.Body.Bytes(), &env)
		if err != nil {
			t.Fatalf("GET ?%s: %v\n%s", query, err, w.Body.String())
		}

		return w.Code, env.Metadata, env.Error
	}

	parts := []string{"config", "expanded_config", "devices", "expanded_devices"}
	for _, tc := range []struct {
		query string
		names []string
		gone  []string // the parts that must be null
	}{
		{"recursion=2", []string{"db", "web"}, nil},
		{"recursion=2&omit=config,devices", []string{"db", "web"}, parts},
		{"recursion=2&omit=config", []string{"db", "web"}, parts[:2]},
		{"recursion=1&omit=devices", []string{"db", "web"}, parts[2:]},
		{"recursion=2&omit=config&filter=config.user.role+eq+front", []string{"web"}, parts[:2]},
	} {
		code, insts, msg := get(tc.query)
		if code != http.StatusOK || len(insts) != len(tc.names) {
			t.Fatalf("GET ?%s: %d %q, %d instances, want %v", tc.query, code, msg, len(insts), tc.names)
		}

		for i, inst := range insts {
			if inst["name"] != tc.names[i] || inst["status"] == nil {
				t.Errorf("GET ?%s: instance %d is %v %v, want %s with its status", tc.query, i, inst["name"], inst["status"], tc.names[i])
			}

			for _, p := range parts {
				v, present := inst[p]
				gone := strings.Contains(strings.Join(tc.gone, " "), p)
				if !present || (v == nil) != gone {
					t.Errorf("GET ?%s: %s's %s is %v (present %v), want it left out: %v", tc.query, inst["name"], p, v, present, gone)
				}
			}
		}
	}

	for _, bad := range []string{"omit=state", "omit=config,", "omit=Config"} {
		code, _, msg := get("recursion=2&" + bad)
		if code != http.StatusBadRequest || !strings.Contains(msg, "omit") {
			t.Errorf("GET ?%s: %d %q, want 400 naming omit", bad, code, msg)
		}
	}
}
