package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 15, item 1: images.remote_cache_expiry. B launches from A's image (the download
// is cached on B) and holds an image its administrator uploaded; with the expiry set to
// 0.0001 days (8.6 s) the cached image goes once unused that long, while the uploaded
// one, as old, stays, and so does the container made from the cached one.
func TestImageRemoteCacheExpiry(t *testing.T) {
	parallel(t)
	requireSetup(t)
	a := startDaemon(t)
	b := startDaemon(t)
	a.listenHTTPS()
	fp := aliasTarget(t, a, "debian/12")
	dropImage(t, b, fp)

	// An image B's administrator uploads: the test image with an empty gzip member
	// appended, so other bytes and another fingerprint.
	good, err := os.ReadFile(imagePath)
	if err != nil {
		t.Fatal(err)
	}

	var extra bytes.Buffer
	zw := gzip.NewWriter(&extra)
	_ = zw.Close()
	code, env, _ := b.rawH("POST", "/1.0/images", bytes.NewReader(append(good, extra.Bytes()...)), map[string]string{"Content-Type": "application/octet-stream"})
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, env.Error)
	}

	_, env = b.waitOp(env)
	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	uploaded, _ := op.Metadata["fingerprint"].(string)
	if op.StatusCode != api.Success || uploaded == "" {
		t.Fatalf("upload: %s %s", op.Status, op.Err)
	}

	for _, bad := range []string{"-1", "ten", "NaN", "1e9"} {
		code, env := b.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"images.remote_cache_expiry":"`+bad+`"}}`))
		if code != http.StatusBadRequest {
			t.Errorf("images.remote_cache_expiry=%q: %d %s, want 400", bad, code, env.Error)
		}
	}

	lxc := newLXC(t, b.dir)
	lxc.must("remote", "add", "A", a.trustToken("cli"))
	lxc.must("launch", "A:debian/12", "local:c1")
	code, img := b.imageOf(t, fp)
	if code != http.StatusOK || !img.Cached {
		t.Fatalf("image after lxc launch A:debian/12: %d, cached %v: want a cached image", code, img.Cached)
	}

	if _, up := b.imageOf(t, uploaded); up.Cached {
		t.Fatalf("an uploaded image is marked cached")
	}

	// The default (10 days) keeps both.
	time.Sleep(3 * time.Second)
	if code, _ := b.imageOf(t, fp); code != http.StatusOK {
		t.Fatalf("cached image gone under the default expiry: %d", code)
	}

	code, env = b.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"images.remote_cache_expiry":"0.0001"}}`))
	if code != http.StatusOK {
		t.Fatalf("setting images.remote_cache_expiry: %d %s", code, env.Error)
	}

	deadline := time.Now().Add(90 * time.Second)
	for {
		code, _ := b.imageOf(t, fp)
		if code == http.StatusNotFound {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("cached image still on B 90 s after an expiry of 8.6 s: %d", code)
		}

		time.Sleep(time.Second)
	}

	if code, _ := b.imageOf(t, uploaded); code != http.StatusOK {
		t.Errorf("the uploaded image was pruned: %d", code)
	}

	if st := b.waitRunning("c1"); st != "running" {
		t.Errorf("c1 after its image was pruned: %q", st)
	}
}
