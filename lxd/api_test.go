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

// A client still writing a refused body must get the error, not EPIPE: net/http closes a
// connection with more than 256 KiB unread, which made the 413 for an oversized request
// reach the client about one time in two.
func TestRefusedBodyGetsItsError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	srv := d.unixServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	big := `{"name":"x","description":"` + strings.Repeat("x", 5<<20) + `"}`
	cases := []struct {
		path string
		code int
		msg  string
	}{
		{"/1.0/instances", http.StatusRequestEntityTooLarge, "larger than"},
		{"/1.0/nowhere", http.StatusNotFound, "unknown API path"},
	}

	for _, tc := range cases {
		for i := 0; i < 20; i++ {
			resp, err := hc.Post("http://unix.socket"+tc.path, "application/json", strings.NewReader(big))
			if err != nil {
				t.Fatalf("POST %s (try %d): %v", tc.path, i, err)
			}

			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()

			var env api.Response
			_ = json.Unmarshal(body, &env)
			if resp.StatusCode != tc.code || !strings.Contains(env.Error, tc.msg) {
				t.Fatalf("POST %s (try %d): %d %q, want %d mentioning %q", tc.path, i, resp.StatusCode, env.Error, tc.code, tc.msg)
			}
		}
	}
}
