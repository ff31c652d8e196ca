package integration

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 15, item 1: `lxc image copy A:img B:` between two berthd in push and relay mode
// (pull mode, measured here too, is tested in TestImagePullLXD). In push mode B issues a push token, A uploads to B
// as an untrusted caller holding it and waits for B's import with that operation's
// secret; in relay mode lxc downloads from A and uploads to B. Each mode copies the
// unified test image and a split one (metadata tarball + squashfs), which B keeps split
// under the same fingerprint. Before split pushes were built, A answered the split push
// with 501.
func TestImageCopyModes(t *testing.T) {
	parallel(t)
	a := startDaemon(t)
	b := startDaemon(t)
	a.listenHTTPS()
	b.listenHTTPS()
	unified := aliasTarget(t, a, "debian/12")

	lxc := newLXC(t, "")
	lxc.must("remote", "add", "A", a.trustToken("cli"))
	lxc.must("remote", "add", "B", b.trustToken("cli"))

	meta, rootfs, split := makeSplitImage(t, "gzip") // image_split_test.go
	lxc.must("image", "import", meta, rootfs, "A:")

	for _, mode := range []string{"pull", "push", "relay"} {
		for _, fp := range []string{unified, split} {
			kind := "unified"
			if fp == split {
				kind = "split"
			}

			t.Run(mode+" "+kind, func(t *testing.T) {
				dropImage(t, b, fp)
				alias := "copied-" + mode + "-" + kind
				start := time.Now()
				lxc.in(t).must("image", "copy", "A:"+fp, "B:", "--mode", mode, "--alias", alias)
				elapsed := time.Since(start)
				code, img := b.imageOf(t, fp)
				if code != http.StatusOK || img.Fingerprint != fp {
					t.Fatalf("image on B after lxc image copy --mode %s: %d %q, want %s", mode, code, img.Fingerprint, fp)
				}

				t.Logf("Berth→Berth image copy --mode %s (%s): %d bytes in %s, %.1f MB/s", mode, kind, img.Size, elapsed.Round(time.Millisecond), float64(img.Size)/1e6/elapsed.Seconds())
				if got := aliasTarget(t, b, alias); got != fp {
					t.Errorf("alias %s on B: %s, want %s", alias, got, fp)
				}

				if img.Public {
					t.Errorf("copied image is public on B: lxc did not ask for --public")
				}

				_, err := os.Stat(filepath.Join(b.dir, "images", fp+".rootfs"))
				if (err == nil) != (fp == split) {
					t.Errorf("B keeps the %s image's rootfs apart: %v", kind, err == nil)
				}

				noSpool(t, b)
				noLiveOps(t, b, "Image push token")
			})
		}
	}
}

// An untrusted caller may push only with a token, only the image the token names, once;
// it may wait only for its own push. Positive control: the same upload with the token,
// the right fingerprint and the right bytes is imported, and its wait is answered.
func TestImagePushRefused(t *testing.T) {
	parallel(t)
	b := startDaemon(t)
	addr := b.listenHTTPS()
	anon := newHTTPSClient(t, addr, tlsConfigFor(b.serverCert()))
	fp := aliasTarget(t, b, "debian/12")
	good, err := os.ReadFile(imagePath)
	if err != nil {
		t.Fatal(err)
	}

	// The same image with an empty gzip member appended: a valid image, other bytes.
	var extra bytes.Buffer
	zw := gzip.NewWriter(&extra)
	_ = zw.Close()
	other := append(append([]byte{}, good...), extra.Bytes()...)
	sum := sha256.Sum256(other)
	otherFP := hex.EncodeToString(sum[:])

	dropImage(t, b, fp)
	storeBefore := imageFingerprints(t, b)

	token := func() (string, string) {
		t.Helper()
		code, env, _ := b.rawH("POST", "/1.0/images", map[string]any{"source": map[string]string{"mode": "push", "fingerprint": fp}}, jsonType)
		if code != http.StatusAccepted {
			t.Fatalf("push token: %d %s", code, env.Error)
		}

		op, _ := env.MetadataAsOperation()
		secret, _ := op.Metadata["secret"].(string)
		if secret == "" {
			t.Fatalf("push token without a secret: %v", op.Metadata)
		}

		return op.ID, secret
	}

	refused := func(name string, code int, env api.Response, want int) {
		t.Helper()
		if code != want {
			t.Errorf("%s: %d %s, want %d", name, code, env.Error, want)
		}

		if got := imageFingerprints(t, b); !equalSets(got, storeBefore) {
			t.Errorf("%s changed B's store: %v, was %v", name, got, storeBefore)
		}

		noSpool(t, b)
	}

	code, env := pushUpload(t, anon, good, fp, "")
	refused("upload without a token", code, env, http.StatusForbidden)

	code, env = pushUpload(t, anon, good, fp, "0123456789abcdef")
	refused("upload with a made-up secret", code, env, http.StatusForbidden)

	_, data := anon.do("POST", "/1.0/images", map[string]any{"source": map[string]string{"mode": "push", "fingerprint": fp}})
	refused("untrusted push token request", statusOf(t, data), envelope(t, data), http.StatusForbidden)

	_, secret := token()
	code, env = pushUpload(t, anon, other, otherFP, secret)
	refused("upload of another image than the token's", code, env, http.StatusForbidden)

	_, secret = token()
	code, env = pushUpload(t, anon, other, fp, secret)
	refused("upload of other bytes under the token's fingerprint", code, env, http.StatusBadRequest)
	code, env = pushUpload(t, anon, good, fp, secret)
	refused("second upload with a used token", code, env, http.StatusForbidden)

	tokenID, secret := token()
	_, data = anon.do("GET", "/1.0/operations/"+tokenID+"/wait?timeout=1&secret="+url.QueryEscape(secret), nil)
	refused("untrusted wait on the token itself", statusOf(t, data), envelope(t, data), http.StatusForbidden)

	// Positive control.
	code, env = pushUpload(t, anon, good, fp, secret)
	if code != http.StatusAccepted {
		t.Fatalf("upload with the token: %d %s", code, env.Error)
	}

	op, _ := env.MetadataAsOperation()
	opSecret, _ := op.Metadata["secret"].(string)
	_, data = anon.do("GET", "/1.0/operations/"+op.ID+"/wait?timeout=60", nil)
	if c := statusOf(t, data); c != http.StatusForbidden {
		t.Errorf("untrusted wait without the operation's secret: %d", c)
	}

	_, data = anon.do("GET", "/1.0/operations/"+op.ID+"/wait?timeout=60&secret="+url.QueryEscape(opSecret), nil)
	var done api.Operation
	_ = json.Unmarshal(envelope(t, data).Metadata, &done)
	if done.StatusCode != api.Success {
		t.Fatalf("pushed import: %s %s", done.Status, done.Err)
	}

	if code, _ := b.imageOf(t, fp); code != http.StatusOK {
		t.Errorf("pushed image not on B: %d", code)
	}
}

// pushUpload posts body to /1.0/images as c, with the push headers when secret is set.
func pushUpload(t *testing.T, c *httpsClient, body []byte, fp, secret string) (int, api.Response) {
	t.Helper()
	req, err := http.NewRequest("POST", "https://"+c.addr+"/1.0/images", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}

	// Expect: 100-continue, as a refused upload is answered before its body is read and
	// the connection closed: the client sees the answer instead of a reset.
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("Content-Type", "application/octet-stream")
	if secret != "" {
		req.Header.Set("X-LXD-secret", secret)
		req.Header.Set("X-LXD-fingerprint", fp)
	}

	hc := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: c.cfg, DisableKeepAlives: true, ExpectContinueTimeout: time.Minute}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, api.Response{Error: err.Error()}
	}

	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env api.Response
	_ = json.Unmarshal(data, &env)
	return resp.StatusCode, env
}

// statusOf is the status code of an envelope (errors carry theirs in error_code).
func statusOf(t *testing.T, data []byte) int {
	t.Helper()
	env := envelope(t, data)
	if env.Type == api.ErrorResponse {
		return env.ErrorCode
	}

	return env.StatusCode
}

// aliasTarget is the fingerprint an alias of d names.
func aliasTarget(t *testing.T, d *daemon, alias string) string {
	t.Helper()
	code, env := d.raw("GET", "/1.0/images/aliases/"+url.PathEscape(alias), nil)
	if code != http.StatusOK {
		t.Fatalf("alias %s: %d %s", alias, code, env.Error)
	}

	var a api.ImageAliasesEntry
	_ = json.Unmarshal(env.Metadata, &a)
	return a.Target
}

// imageFingerprints lists d's images.
func imageFingerprints(t *testing.T, d *daemon) []string {
	t.Helper()
	_, env := d.raw("GET", "/1.0/images?recursion=1", nil)
	var imgs []api.Image
	_ = json.Unmarshal(env.Metadata, &imgs)
	fps := []string{}
	for _, img := range imgs {
		fps = append(fps, img.Fingerprint)
	}

	return fps
}

func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// noLiveOps fails t if d has a running operation with this description.
func noLiveOps(t *testing.T, d *daemon, desc string) {
	t.Helper()
	_, env := d.raw("GET", "/1.0/operations?recursion=1", nil)
	if strings.Contains(string(env.Metadata), desc) && strings.Contains(string(env.Metadata), `"running"`) {
		var ops map[string][]api.Operation
		_ = json.Unmarshal(env.Metadata, &ops)
		for _, op := range ops["running"] {
			if op.Description == desc {
				t.Errorf("operation %q still running on the target: %s", desc, op.ID)
			}
		}
	}
}

// Issue 15, items 1 and 4 for images: `lxc image copy` between a real LXD 5.0.2 and a
// berthd in each mode, both ways. LXD→Berth: the copy is in B's store and a container
// launched from it on B runs systemd. Berth→LXD: LXD accepts Berth's tarball (its
// metadata.yaml and layout) and creates an instance from it.
func TestImageCopyLXD(t *testing.T) {
	parallel(t)
	requireSetup(t)
	b := startDaemon(t)
	b.listenHTTPS()
	l := startLXDPeer(t)
	fp := l.importTestImage("debian12")

	lxc := newLXC(t, "")
	lxc.must("remote", "add", "B", b.trustToken("cli"))
	lxc.must("remote", "add", "L", l.token(t, "cli"))

	for _, mode := range []string{"pull", "push", "relay"} {
		t.Run("LXD to Berth "+mode, func(t *testing.T) {
			dropImage(t, b, fp)
			start := time.Now()
			lxc.in(t).must("image", "copy", "L:"+fp, "B:", "--mode", mode, "--alias", "from-lxd-"+mode)
			elapsed := time.Since(start)
			code, img := b.imageOf(t, fp)
			if code != http.StatusOK {
				t.Fatalf("image on B after lxc image copy L:%s B: --mode %s: %d", fp, mode, code)
			}

			t.Logf("LXD→Berth image copy --mode %s: %d bytes in %s, %.1f MB/s", mode, img.Size, elapsed.Round(time.Millisecond), float64(img.Size)/1e6/elapsed.Seconds())
			if got := aliasTarget(t, b, "from-lxd-"+mode); got != fp {
				t.Errorf("alias from-lxd-%s on B: %s, want %s", mode, got, fp)
			}

			noSpool(t, b)
		})
	}

	t.Run("launch on Berth", func(t *testing.T) {
		lxc.in(t).must("launch", "B:from-lxd-relay", "B:fromlxd")
		if st := b.waitRunning("fromlxd"); st != "running" {
			t.Fatalf("container from LXD's image: systemd is %q", st)
		}
	})

	for _, mode := range []string{"pull", "push", "relay"} {
		t.Run("Berth to LXD "+mode, func(t *testing.T) {
			if l.fingerprintOf(fp) != "" {
				l.must("image", "delete", fp)
			}

			start := time.Now()
			lxc.in(t).must("image", "copy", "B:"+fp, "L:", "--mode", mode, "--alias", "from-berth-"+mode)
			elapsed := time.Since(start)
			if got := l.fingerprintOf("from-berth-" + mode); got != fp {
				t.Fatalf("image on LXD after lxc image copy B:%s L: --mode %s: %q", fp, mode, got)
			}

			t.Logf("Berth→LXD image copy --mode %s: %s", mode, elapsed.Round(time.Millisecond))
		})
	}

	t.Run("LXD creates an instance from Berth's image", func(t *testing.T) {
		name := l.Prefix + "c1"
		l.must("init", "from-berth-relay", name)
		out := l.must("list", name, "--format", "csv", "-c", "ns")
		if !strings.Contains(out, "STOPPED") {
			t.Errorf("LXD instance from Berth's image: %q", out)
		}
	})
}
