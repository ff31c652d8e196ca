package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/streams"
)

// A hostile simplestreams server: each document is refused before it is used, with a
// message naming the problem; a well-formed tree is the positive control.
func TestStreamsFindHostile(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	good := `{"products":{"p":{"aliases":"x","arch":"` + streamsArchs()[0] + `","versions":{"20260101":{"items":{"i":{"ftype":"lxd_combined.tar.gz","path":"images/x.tar.gz","sha256":"` + fp + `","size":5}}}}}}}`
	index := func(path string) string {
		return `{"index":{"images":{"datatype":"image-downloads","path":"` + path + `"}}}`
	}

	for name, tc := range map[string]struct {
		routes map[string]string
		want   string
	}{
		"good":             {map[string]string{"/streams/v1/index.json": index("streams/v1/images.json"), "/streams/v1/images.json": good}, ""},
		"no index":         {map[string]string{}, "404"},
		"index too large":  {map[string]string{"/streams/v1/index.json": strings.Repeat(" ", streams.MaxIndexSize+1)}, "more than"},
		"index traversal":  {map[string]string{"/streams/v1/index.json": index("../../etc/passwd")}, "leaves the tree"},
		"index wrong type": {map[string]string{"/streams/v1/index.json": `{"index":[1,2]}`}, "invalid simplestreams document"},
		"products garbage": {map[string]string{"/streams/v1/index.json": index("p.json"), "/p.json": `{"products":"no"}`}, "invalid simplestreams document"},
		"item traversal":   {map[string]string{"/streams/v1/index.json": index("p.json"), "/p.json": strings.Replace(good, "images/x.tar.gz", "../x", 1)}, "leaves the tree"},
		"redirect":         {map[string]string{"/streams/v1/index.json": "REDIRECT"}, "redirected"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, ok := tc.routes[r.URL.Path]
				switch {
				case !ok:
					http.NotFound(w, r)
				case body == "REDIRECT":
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
				default:
					// Chunked (no Content-Length): the reader's own cap must hold.
					w.(http.Flusher).Flush()
					_, _ = w.Write([]byte(body))
				}
			}))
			defer srv.Close()

			cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			hc, err := client.NewHTTPSClient(client.HTTPSArgs{ServerCert: cert})
			if err != nil {
				t.Fatal(err)
			}

			base, err := streamsBase(srv.URL)
			if err != nil {
				t.Fatal(err)
			}

			found, err := streamsFind(context.Background(), hc, base, pullSource{Server: srv.URL, Alias: "x"})
			if tc.want == "" {
				if err != nil || found.Item.SHA256 != fp {
					t.Fatalf("good tree: %+v %v", found, err)
				}

				// lxc sends an alias in the fingerprint field; a fingerprint prefix works too.
				for _, f := range []string{"x", fp[:8]} {
					found, err = streamsFind(context.Background(), hc, base, pullSource{Server: srv.URL, Fingerprint: f})
					if err != nil || found.Item.SHA256 != fp {
						t.Errorf("fingerprint field %q: %+v %v", f, found, err)
					}
				}

				_, err = streamsFind(context.Background(), hc, base, pullSource{Server: srv.URL, Alias: "nope"})
				if api.StatusCodeOf(err) != http.StatusNotFound {
					t.Errorf("unknown alias: %v", err)
				}

				return
			}

			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %+v, %v; want an error saying %q", found, err, tc.want)
			}
		})
	}
}
