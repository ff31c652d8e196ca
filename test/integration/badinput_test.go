package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputChangesNothing sends invalid requests and checks the status, the message,
// and that no instance, directory or row appeared.
func TestBadInputChangesNothing(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("init", "debian/12", "dup")

	img, _, err := d.c.GetImageAlias(context.Background(), "debian/12")
	if err != nil {
		t.Fatal(err)
	}

	post := func(name, fp string) string {
		return fmt.Sprintf(`{"name":%q,"source":{"type":"image","fingerprint":%q}}`, name, fp)
	}

	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"digit-first", post("1abc", img.Target), 400, "name"},
		{"underscore", post("a_b", img.Target), 400, "name"},
		{"too-long", post(strings.Repeat("a", 64), img.Target), 400, "63"},
		{"newline", post("a\nb", img.Target), 400, "name"},
		{"duplicate", post("dup", img.Target), 409, "already exists"},
		{"unknown-image", post("x1", strings.Repeat("ab", 32)), 404, "not found"},
		{"unknown-profile", `{"name":"x2","profiles":["nope"],"source":{"type":"image","fingerprint":"` + img.Target + `"}}`, 404, "not found"},
		{"bad-config", `{"name":"x3","config":{"limits.bogus":"1"},"source":{"type":"image","fingerprint":"` + img.Target + `"}}`, 400, "limits.bogus"},
		{"malformed", `{"name":`, 400, "malformed"},
		{"trailing", post("x4", img.Target) + "{}", 400, "malformed"},
		{"oversized", `{"name":"x5","description":"` + strings.Repeat("x", 5<<20) + `"}`, 413, "larger"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, env := d.raw("POST", "/1.0/instances", strings.NewReader(tc.body))
			if code != tc.code || env.ErrorCode != tc.code || env.Type != "error" {
				t.Fatalf("status %d (envelope %d %q), want %d", code, env.ErrorCode, env.Type, tc.code)
			}

			if !strings.Contains(env.Error, tc.msg) {
				t.Fatalf("error %q does not mention %q", env.Error, tc.msg)
			}
		})
	}

	names, err := d.c.GetInstanceNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	if len(names) != 1 || names[0] != "dup" {
		t.Fatalf("instances after bad requests: %v, want [dup]", names)
	}

	entries, _ := os.ReadDir(filepath.Join(d.dir, "instances"))
	if len(entries) != 1 {
		t.Fatalf("instance directories after bad requests: %d, want 1", len(entries))
	}

	// Bad state changes and unknown objects.
	code, _ := d.raw("PUT", "/1.0/instances/dup/state", strings.NewReader(`{"action":"explode"}`))
	if code != 400 {
		t.Errorf("unknown action: %d, want 400", code)
	}

	code, _ = d.raw("GET", "/1.0/instances/nope", nil)
	if code != 404 {
		t.Errorf("unknown instance: %d, want 404", code)
	}

	code, _ = d.raw("GET", "/1.0/images/aliases/nope", nil)
	if code != 404 {
		t.Errorf("unknown alias: %d, want 404", code)
	}

	// The CLI prints one readable line and exits non-zero.
	cmd := exec.Command(berthBin, "launch", "debian/12", "bad_name")
	cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	err = cmd.Run()
	msg := stderr.String()
	if err == nil || strings.Count(strings.TrimSpace(msg), "\n") != 0 || !strings.HasPrefix(msg, "Error: ") || !strings.Contains(msg, "bad_name") {
		t.Errorf("berth launch with a bad name: err=%v stderr=%q", err, msg)
	}
}
