package integration

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 15, item 1 (LXD protocol): a berthd downloads images from another berthd. The
// stock lxc drives B to pull from A (`lxc image copy A:img local:`, `lxc launch A:img
// local:c1`); a wrong pinned certificate, an unknown alias, a private image without its
// secret, a server sending other bytes than the fingerprint, one announcing an image over
// the size cap, and one redirecting elsewhere each fail and leave B's store empty.
func TestImagePullLXD(t *testing.T) {
	parallel(t)
	a := startDaemon(t)
	b := startDaemon(t)
	addrA := a.listenHTTPS()
	pemA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.serverCert().Raw}))
	pemB := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.serverCert().Raw}))

	code, env := a.raw("GET", "/1.0/images/aliases/"+url.PathEscape("debian/12"), nil)
	if code != http.StatusOK {
		t.Fatalf("alias on A: %d %s", code, env.Error)
	}

	var alias api.ImageAliasesEntry
	_ = json.Unmarshal(env.Metadata, &alias)
	fp := alias.Target

	// B starts without the image: everything it gets comes from A.
	dropImage(t, b, fp)

	// lxc with B as "local" (its LXD_DIR) and A as a remote it trusts. A's image is
	// private: lxc fetches a secret from A and hands it to B.
	lxc := newLXC(t, b.dir)
	lxc.must("remote", "add", "A", a.trustToken("cli"))

	t.Run("image copy", func(t *testing.T) {
		lxc.in(t).must("image", "copy", "A:debian/12", "local:", "--alias", "copied")
		code, img := b.imageOf(t, fp)
		if code != http.StatusOK || img.Fingerprint != fp {
			t.Fatalf("image on B after lxc image copy: %d %q, want %s", code, img.Fingerprint, fp)
		}

		code, env := b.raw("GET", "/1.0/images/aliases/copied", nil)
		if code != http.StatusOK || !strings.Contains(string(env.Metadata), fp) {
			t.Errorf("alias copied on B: %d %s", code, env.Metadata)
		}

		noSpool(t, b)
	})

	t.Run("launch", func(t *testing.T) {
		dropImage(t, b, fp)
		lxc.in(t).must("launch", "A:debian/12", "local:c1")
		if st := b.waitRunning("c1"); st != "running" {
			t.Fatalf("c1 launched from A's image: systemd is %q", st)
		}

		// The image stays cached on B.
		if code, _ := b.imageOf(t, fp); code != http.StatusOK {
			t.Errorf("image not cached on B after launch: %d", code)
		}

		// A second launch under the same name is refused before any download.
		out, err := lxc.in(t).run("launch", "A:debian/12", "local:c1")
		if err == nil || !strings.Contains(out, "already exists") {
			t.Errorf("second lxc launch A:debian/12 local:c1: %v %q", err, out)
		}
	})

	// start, without a name (instance_create_start): the operation names the instance it
	// makes from the start, downloads, creates, starts it, and says it made it.
	t.Run("create with start", func(t *testing.T) {
		code, env := a.raw("POST", "/1.0/images/"+fp+"/secret", nil)
		var secretOp api.Operation
		_ = json.Unmarshal(env.Metadata, &secretOp)
		secret, _ := secretOp.Metadata["secret"].(string)
		if code != http.StatusAccepted || secret == "" {
			t.Fatalf("secret of A's image: %d %s", code, env.Metadata)
		}

		op, err := b.c.LaunchInstance(t.Context(), api.InstancesPost{Start: true, Source: api.InstanceSource{Type: "image",
			Mode: "pull", Server: "https://" + addrA, Certificate: pemA, Fingerprint: fp, Secret: secret, Protocol: "lxd"}})
		if err != nil {
			t.Fatal(err)
		}

		name := op.InstanceName()
		err = op.Wait(t.Context())
		if err != nil || name == "" || op.Metadata[api.OperationInstanceCreated] != true {
			t.Fatalf("pull with start: %v; instance %q, metadata %v", err, name, op.Metadata)
		}

		if st := b.waitRunning(name); st != "running" {
			t.Errorf("%s, pulled with start: systemd is %q", name, st)
		}
	})

	// A hostile image server: its alias names fp, its record is fp's, but the tarball it
	// sends is other bytes; "redir" redirects the export to a path of its own.
	bad := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sync := func(md any) {
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "sync", "status": "Success", "status_code": 200, "metadata": md})
		}

		switch {
		case strings.HasPrefix(r.URL.Path, "/1.0/images/aliases/"):
			sync(map[string]string{"name": "x", "target": fp})
		case r.URL.Path == "/1.0/images/"+fp && r.URL.Query().Get("secret") == "huge":
			sync(api.Image{Fingerprint: fp, Size: 1 << 40})
		case r.URL.Path == "/1.0/images/"+fp:
			sync(api.Image{Fingerprint: fp, Size: 1000})
		case r.URL.Path == "/1.0/images/"+fp+"/export" && r.URL.Query().Get("secret") == "redir":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case r.URL.Path == "/1.0/images/"+fp+"/export":
			_, _ = w.Write([]byte(strings.Repeat("not the image\n", 70)))
		default:
			http.NotFound(w, r)
		}
	}))
	bad.StartTLS()
	t.Cleanup(bad.Close)
	pemBad := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bad.Certificate().Raw}))

	for _, tc := range []struct {
		name string
		src  map[string]string
		want string
	}{
		{"wrong certificate", map[string]string{"server": "https://" + addrA, "certificate": pemB, "alias": "debian/12"}, "certificate changed"},
		{"unknown alias", map[string]string{"server": "https://" + addrA, "certificate": pemA, "alias": "nope"}, "not found"},
		{"private without secret", map[string]string{"server": "https://" + addrA, "certificate": pemA, "fingerprint": fp}, "not found"},
		{"fingerprint mismatch", map[string]string{"server": bad.URL, "certificate": pemBad, "alias": "x"}, "does not match its fingerprint"},
		{"announced too large", map[string]string{"server": bad.URL, "certificate": pemBad, "alias": "x", "secret": "huge"}, "more than the"},
		{"redirect", map[string]string{"server": bad.URL, "certificate": pemBad, "alias": "x", "secret": "redir"}, "redirected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dropImage(t, b, fp)
			src := map[string]string{"type": "image", "mode": "pull", "protocol": "lxd"}
			for k, v := range tc.src {
				src[k] = v
			}

			body, _ := json.Marshal(map[string]any{"source": src})
			code, env, _ := b.rawH("POST", "/1.0/images", strings.NewReader(string(body)), jsonType)
			if code != http.StatusAccepted {
				t.Fatalf("POST /1.0/images: %d %s", code, env.Error)
			}

			_, env = b.waitOp(env)
			var op api.Operation
			_ = json.Unmarshal(env.Metadata, &op)
			t.Logf("pull failed with: %s", op.Err)
			if op.StatusCode != api.Failure || !strings.Contains(op.Err, tc.want) {
				t.Errorf("pull: status %s, error %q, want one saying %q", op.Status, op.Err, tc.want)
			}

			if code, _ := b.imageOf(t, fp); code != http.StatusNotFound {
				t.Errorf("image on B after a failed pull: %d", code)
			}

			noSpool(t, b)
		})
	}

	// Positive control of the cases above: the same request with A's certificate and the
	// alias works through the API too.
	t.Run("api pull", func(t *testing.T) {
		dropImage(t, b, fp)
		code, env := a.raw("PATCH", "/1.0/images/"+fp, strings.NewReader(`{"public":true}`))
		if code != http.StatusOK {
			t.Fatalf("making the image public on A: %d %s", code, env.Error)
		}

		body, _ := json.Marshal(map[string]any{"source": map[string]string{"type": "image", "mode": "pull", "protocol": "lxd", "server": "https://" + addrA, "certificate": pemA, "alias": "debian/12"}})
		code, env, _ = b.rawH("POST", "/1.0/images", strings.NewReader(string(body)), jsonType)
		if code != http.StatusAccepted {
			t.Fatalf("POST /1.0/images: %d %s", code, env.Error)
		}

		_, env = b.waitOp(env)
		var op api.Operation
		_ = json.Unmarshal(env.Metadata, &op)
		if op.StatusCode != api.Success || op.Metadata["fingerprint"] != fp {
			t.Fatalf("pull of a public image by alias: %s %q, metadata %v", op.Status, op.Err, op.Metadata)
		}
	})
}

// jsonType: a JSON body to POST /1.0/images (a raw body is an image upload).
var jsonType = map[string]string{"Content-Type": "application/json"}

// dropImage deletes image fp from d if it has it, and waits for its files to go.
func dropImage(t *testing.T, d *daemon, fp string) {
	t.Helper()
	code, env := d.raw("DELETE", "/1.0/images/"+fp, nil)
	if code == http.StatusNotFound {
		return
	}

	if code != http.StatusAccepted {
		t.Fatalf("DELETE image: %d %s", code, env.Error)
	}

	if code, env := d.waitOp(env); code != http.StatusOK {
		t.Fatalf("DELETE image: %d %s", code, env.Error)
	}
}

// noSpool fails t if a download left a file in d's image spool.
func noSpool(t *testing.T, d *daemon) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(d.dir, "images"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "upload-") {
			t.Errorf("left in B's image store: %s", e.Name())
		}
	}
}
