package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLXCParityRest drives, with the stock lxc (5.0), the issue 13 endpoints that lxc has
// no command for: image alias PATCH, snapshot expires_at PUT and PATCH (and the
// snapshots.expiry default lxc snapshot --no-expiry skips), and backup rename. Each bad
// request is refused and changes nothing.
func TestLXCParityRest(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	lxc := newLXCRunner(t, d)
	fp := fileSHA256(t, imagePath)
	lxc.must("init", "debian/12", "p1")
	t.Cleanup(func() { _, _ = lxc.run("delete", "-f", "p1") })

	query := func(method, path, data string) map[string]any {
		t.Helper()
		args := []string{"query", "--wait", "-X", method, path}
		if data != "" {
			args = append(args, "--data", data)
		}

		out := lxc.must(args...)
		m := map[string]any{}
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("lxc query %s %s: %v\n%s", method, path, err, out)
			}
		}

		return m
	}

	t.Run("ImageAliasPatch", func(t *testing.T) {
		lxc.must("image", "alias", "create", "parity-a", fp)
		t.Cleanup(func() { _, _ = lxc.run("image", "alias", "delete", "parity-a") })
		query("PATCH", "/1.0/images/aliases/parity-a", `{"description":"patched by lxc"}`)
		got := query("GET", "/1.0/images/aliases/parity-a", "")
		if got["description"] != "patched by lxc" || got["target"] != fp {
			t.Errorf("alias after PATCH: %v", got)
		}

		if out := lxc.must("image", "alias", "list", "--format", "csv"); !strings.Contains(out, "patched by lxc") {
			t.Errorf("lxc image alias list:\n%s", out)
		}

		lxc.fails("query", "-X", "PATCH", "/1.0/images/aliases/parity-a", "--data", `{"target":"0000000000000000000000000000000000000000000000000000000000000000"}`)
		if got := query("GET", "/1.0/images/aliases/parity-a", ""); got["target"] != fp || got["description"] != "patched by lxc" {
			t.Errorf("a refused PATCH changed the alias: %v", got)
		}
	})

	t.Run("SnapshotExpiry", func(t *testing.T) {
		lxc.must("snapshot", "p1", "s0")
		snap := "/1.0/instances/p1/snapshots/s0"
		query("PATCH", snap, `{"expires_at":"2030-01-02T03:04:05Z"}`)
		if got := query("GET", snap, ""); !strings.HasPrefix(got["expires_at"].(string), "2030-01-02T03:04:05") {
			t.Errorf("expires_at after PATCH: %v", got["expires_at"])
		}

		if out := lxc.must("info", "p1"); !strings.Contains(out, "2030/01/02") {
			t.Errorf("lxc info does not show the expiry:\n%s", out)
		}

		query("PUT", snap, `{"expires_at":"2031-05-06T07:08:09Z"}`)
		if got := query("GET", snap, ""); !strings.HasPrefix(got["expires_at"].(string), "2031-05-06T07:08:09") {
			t.Errorf("expires_at after PUT: %v", got["expires_at"])
		}

		lxc.fails("query", "-X", "PATCH", snap, "--data", `{"expires_at":"next tuesday"}`)
		if got := query("GET", snap, ""); !strings.HasPrefix(got["expires_at"].(string), "2031-05-06T07:08:09") {
			t.Errorf("a refused PATCH changed expires_at: %v", got["expires_at"])
		}

		// snapshots.expiry gives new snapshots an expiry; --no-expiry skips it.
		lxc.must("config", "set", "p1", "snapshots.expiry", "2d")
		lxc.must("snapshot", "p1", "s1")
		lxc.must("snapshot", "p1", "s2", "--no-expiry")
		exp, err := time.Parse(time.RFC3339, query("GET", "/1.0/instances/p1/snapshots/s1", "")["expires_at"].(string))
		if err != nil || exp.Before(time.Now().Add(47*time.Hour)) || exp.After(time.Now().Add(49*time.Hour)) {
			t.Errorf("s1 expires at %v (%v), want in two days", exp, err)
		}

		if e := query("GET", "/1.0/instances/p1/snapshots/s2", "")["expires_at"].(string); !strings.HasPrefix(e, "0001-01-01") {
			t.Errorf("s2 (--no-expiry) expires at %s", e)
		}

		lxc.must("config", "unset", "p1", "snapshots.expiry")
	})

	t.Run("BackupRename", func(t *testing.T) {
		query("POST", "/1.0/instances/p1/backups", `{"name":"b0","instance_only":true}`)
		query("POST", "/1.0/instances/p1/backups", `{"name":"other","instance_only":true}`)
		query("POST", "/1.0/instances/p1/backups/b0", `{"name":"b1"}`)
		list := func() string {
			out := lxc.must("query", "/1.0/instances/p1/backups")
			return out
		}

		if out := list(); !strings.Contains(out, "/backups/b1") || strings.Contains(out, "/backups/b0") {
			t.Errorf("backups after rename:\n%s", out)
		}

		if got := query("GET", "/1.0/instances/p1/backups/b1", ""); got["name"] != "b1" {
			t.Errorf("renamed backup: %v", got)
		}

		before := list()
		lxc.fails("query", "--wait", "-X", "POST", "/1.0/instances/p1/backups/b1", "--data", `{"name":"other"}`)
		lxc.fails("query", "--wait", "-X", "POST", "/1.0/instances/p1/backups/b1", "--data", `{"name":"a/b"}`)
		lxc.fails("query", "--wait", "-X", "POST", "/1.0/instances/p1/backups/nosuch", "--data", `{"name":"b2"}`)
		if after := list(); after != before {
			t.Errorf("refused renames changed the backups:\n%s\nwas\n%s", after, before)
		}
	})
}
