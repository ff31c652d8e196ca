package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/trust"
)

// countingFetcher counts the fetches asked of it and has nothing.
type countingFetcher struct{ n atomic.Int32 }

func (f *countingFetcher) FetchImage(context.Context, string) (io.ReadCloser, string, error) {
	f.n.Add(1)
	return nil, "", io.ErrUnexpectedEOF
}

// An untrusted client exporting a public image whose file is on another member gets a
// 503 saying so, and no fetch across the cluster is made for it.
func TestImageExportUntrustedNoFetch(t *testing.T) {
	d := newFakeClusterDaemon(t)
	fp := strings.Repeat("ab", 32)
	call := fakeAPI(t, d)
	code, env, _ := call(http.MethodPatch, "/1.0/images/"+fp, `{"public": true}`)
	if code != http.StatusOK {
		t.Fatalf("making the image public: %d %s", code, env.Error)
	}

	f := &countingFetcher{}
	d.images.SetFetcher(f)
	r := httptest.NewRequest(http.MethodGet, "/1.0/images/"+fp+"/export", nil)
	r = mux.SetURLVars(r, map[string]string{"fingerprint": fp})
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1}))
	resp := imageExport(d, r)
	w := httptest.NewRecorder()
	_ = resp.Render(w, r)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "untrusted client") {
		t.Fatalf("untrusted export of a file elsewhere: %d %s", w.Code, w.Body.String())
	}

	if n := f.n.Load(); n != 0 {
		t.Fatalf("an untrusted export made %d fetches from other members", n)
	}

}
