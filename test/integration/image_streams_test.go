package integration

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 15, items 1 and 2 (simplestreams): `berth image publish-streams` writes a tree of
// A's image, a static HTTPS server on loopback serves it, and the stock lxc copies and
// launches it by alias into A after A lost the image; the fingerprint is the same. A tree
// whose tarball was tampered with and an unknown alias each fail clearly and leave the
// store without the image and without a half-written file.
func TestImageStreams(t *testing.T) {
	parallel(t)
	a := startDaemon(t)
	code, env := a.raw("GET", "/1.0/images/aliases/"+url.PathEscape("debian/12"), nil)
	if code != http.StatusOK {
		t.Fatalf("alias on A: %d %s", code, env.Error)
	}

	var alias api.ImageAliasesEntry
	_ = json.Unmarshal(env.Metadata, &alias)
	fp := alias.Target

	tree := filepath.Join(t.TempDir(), "site")
	a.berth("image", "publish-streams", tree, "debian/12")
	for _, p := range []string{"streams/v1/index.json", "streams/v1/images.json", "images/" + fp + ".tar.gz"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			t.Fatalf("published tree: %v", err)
		}
	}

	products, _ := os.ReadFile(filepath.Join(tree, "streams/v1/images.json"))
	for _, want := range []string{`"lxd_combined.tar.gz"`, `"incus_combined.tar.gz"`, `"sha256": "` + fp, "debian/12"} {
		if !strings.Contains(string(products), want) {
			t.Errorf("images.json lacks %s:\n%s", want, products)
		}
	}

	// Publishing again (all images) replaces the tree whole, leaving nothing beside it.
	a.berth("image", "publish-streams", tree)
	if ents, _ := os.ReadDir(filepath.Dir(tree)); len(ents) != 1 {
		t.Errorf("beside the tree after a second publish: %v", ents)
	}

	srv := httptest.NewTLSServer(http.FileServer(http.Dir(tree)))
	t.Cleanup(srv.Close)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	// A tampered copy of the tree (httptest's servers share one certificate): the tarball's bytes changed, its sha256 kept.
	bad := filepath.Join(t.TempDir(), "bad")
	if out, err := exec.Command("cp", "-a", tree, bad).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}

	f, err := os.OpenFile(filepath.Join(bad, "images", fp+".tar.gz"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}

	_, _ = f.Write(make([]byte, 4096))
	_ = f.Close()
	badSrv := httptest.NewTLSServer(http.FileServer(http.Dir(bad)))
	t.Cleanup(badSrv.Close)
	badPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: badSrv.Certificate().Raw})

	dropImage(t, a, fp)

	// lxc trusts a remote's self-signed certificate saved as servercerts/NAME.crt.
	lxc := newLXC(t, a.dir)
	_, _ = lxc.run("list")
	if err := os.MkdirAll(filepath.Join(lxc.conf, "servercerts"), 0o700); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(lxc.conf, "servercerts", "s.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	lxc.must("remote", "add", "s", srv.URL, "--protocol", "simplestreams", "--public")

	t.Run("lxc image copy", func(t *testing.T) {
		// lxc itself reads the tree: the image is listed, an unknown alias is refused.
		if out := lxc.in(t).must("image", "list", "s:"); !strings.Contains(out, fp[:12]) {
			t.Errorf("lxc image list s: lacks %s:\n%s", fp[:12], out)
		}

		if out, err := lxc.in(t).run("image", "copy", "s:nope", "local:"); err == nil {
			t.Errorf("lxc image copy s:nope worked: %s", out)
		}

		lxc.in(t).must("image", "copy", "s:debian/12", "local:", "--alias", "fromstreams")
		code, img := a.imageOf(t, fp)
		if code != http.StatusOK || img.Fingerprint != fp {
			t.Fatalf("image after lxc image copy s:debian/12: %d %q, want %s", code, img.Fingerprint, fp)
		}

		noSpool(t, a)
	})

	t.Run("lxc launch", func(t *testing.T) {
		dropImage(t, a, fp)
		lxc.in(t).must("launch", "s:debian/12", "c1")
		if st := a.waitRunning("c1"); st != "running" {
			t.Fatalf("c1 launched from the streams image: systemd is %q", st)
		}

		if code, _ := a.imageOf(t, fp); code != http.StatusOK {
			t.Errorf("image not cached after launch: %d", code)
		}
	})

	pull := func(t *testing.T, server string, cert []byte, alias string) api.Operation {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"source": map[string]string{"type": "image", "mode": "pull", "protocol": "simplestreams", "server": server, "certificate": string(cert), "alias": alias}})
		code, env, _ := a.rawH("POST", "/1.0/images", strings.NewReader(string(body)), jsonType)
		if code != http.StatusAccepted {
			t.Fatalf("POST /1.0/images: %d %s", code, env.Error)
		}

		_, env = a.waitOp(env)
		var op api.Operation
		_ = json.Unmarshal(env.Metadata, &op)
		return op
	}

	for _, tc := range []struct {
		name, server string
		cert         []byte
		alias, want  string
	}{
		{"tampered", badSrv.URL, badPEM, "debian/12", "does not match its fingerprint"},
		{"unknown alias", srv.URL, certPEM, "nope", "not found"},
		{"wrong certificate", srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.serverCert().Raw}), "debian/12", "certificate changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _ = a.berthErr("delete", "-f", "c1")
			dropImage(t, a, fp)
			op := pull(t, tc.server, tc.cert, tc.alias)
			t.Logf("pull failed with: %s", op.Err)
			if op.StatusCode != api.Failure || !strings.Contains(op.Err, tc.want) {
				t.Errorf("pull: status %s, error %q, want one saying %q", op.Status, op.Err, tc.want)
			}

			if code, _ := a.imageOf(t, fp); code != http.StatusNotFound {
				t.Errorf("image in the store after a failed pull: %d", code)
			}

			noSpool(t, a)
		})
	}

	// Positive control of the cases above: the same API request against the untampered
	// tree with its certificate works.
	t.Run("api pull", func(t *testing.T) {
		dropImage(t, a, fp)
		op := pull(t, srv.URL, certPEM, "debian/12")
		if op.StatusCode != api.Success || op.Metadata["fingerprint"] != fp {
			t.Fatalf("pull by alias: %s %q, metadata %v", op.Status, op.Err, op.Metadata)
		}
	})
}
