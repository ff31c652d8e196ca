package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
)

// hostileFileServer is a pinned remote whose file API answers from tree: path → a
// function writing the answer (type header and body).
func hostileFileServer(t *testing.T, tree map[string]func(w http.ResponseWriter)) (confDir string) {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := tree[r.URL.Query().Get("path")]; ok && strings.Contains(r.URL.Path, "/files") {
			w.Header().Set("X-LXD-mode", "0755")
			f(w)
			return
		}

		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type":"sync","status":"Success","status_code":200,"metadata":{"auth":"trusted","auth_methods":["tls"]}}`))
	}))
	t.Cleanup(s.Close)

	conf := t.TempDir()
	err := os.MkdirAll(filepath.Join(conf, "servercerts"), 0o700)
	if err == nil {
		err = os.WriteFile(filepath.Join(conf, "servercerts", "evil.crt"), client.EncodeCertificate(s.Certificate()), 0o644)
	}

	if err == nil {
		err = os.WriteFile(filepath.Join(conf, "config.yml"), []byte("default-remote: local\nremotes:\n  evil:\n    addr: "+s.URL+"\n    protocol: lxd\n"), 0o600)
	}

	if err != nil {
		t.Fatal(err)
	}

	return conf
}

func dirAnswer(entries string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("X-LXD-type", "directory")
		_, _ = w.Write([]byte(`{"type":"sync","status":"Success","status_code":200,"metadata":` + entries + `}`))
	}
}

func linkAnswer(target string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("X-LXD-type", "symlink")
		_, _ = w.Write([]byte(target))
	}
}

func fileAnswer(w http.ResponseWriter) {
	w.Header().Set("X-LXD-type", "file")
	_, _ = w.Write([]byte("written by the server\n"))
}

// A recursive pull from a hostile server must not write outside its target through a
// symlink the pull itself created: neither when an entry is listed twice (first a
// symlink, then a directory) nor when two sources share a base name.
func TestPullRecursiveStaysInTarget(t *testing.T) {
	victim := t.TempDir()
	served := 0
	twice := func(w http.ResponseWriter) {
		served++
		if served == 1 {
			linkAnswer(victim)(w)
			return
		}

		dirAnswer(`["pwned"]`)(w)
	}

	cases := map[string]struct {
		tree    map[string]func(w http.ResponseWriter)
		sources []string
	}{
		"entry listed twice": {
			tree:    map[string]func(w http.ResponseWriter){"/d": dirAnswer(`["a","a"]`), "/d/a": twice, "/d/a/pwned": fileAnswer},
			sources: []string{"evil:c1/d"},
		},
		"two sources, one base name": {
			tree: map[string]func(w http.ResponseWriter){
				"/x/a": linkAnswer(victim), "/y/a": dirAnswer(`["pwned"]`), "/y/a/pwned": fileAnswer,
			},
			sources: []string{"evil:c1/x/a", "evil:c1/y/a"},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			served = 0
			conf := hostileFileServer(t, tc.tree)
			out := t.TempDir()
			var o, e bytes.Buffer
			a := newApp(&o, &e)
			a.confDir = conf
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			code := run(ctx, append(append([]string{"file", "pull", "-r"}, tc.sources...), out+"/"), a)
			_, err := os.Stat(filepath.Join(victim, "pwned"))
			if err == nil {
				t.Fatalf("the pull wrote outside its target (exit %d)", code)
			}

			if code == 0 {
				t.Fatalf("the pull succeeded; want it refused (stderr %q)", e.String())
			}
		})
	}
}
