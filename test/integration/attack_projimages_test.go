package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestAttackProjectImagesTenant: a certificate restricted to project pt (restricted,
// features.images on) reaches only pt's images. Listing, reading by fingerprint or
// alias, exporting and deleting the default project's images through pt all fail, and
// the default project's image is unchanged; pt's own image is listed (positive control).
func TestAttackProjectImagesTenant(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)
	realFP := fileSHA256(t, imagePath)
	tinyFP := fileSHA256(t, absoluteNamesImage(t))

	l.must("project", "create", "pt", "-c", "restricted=true")
	t.Cleanup(func() {
		_, _ = l.run("image", "delete", tinyFP, "--project", "pt")
		_, _ = l.run("project", "delete", "pt")
	})

	l.must("image", "import", absoluteNamesImage(t), "--alias", "mine", "--project", "pt")

	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["pt"],"token":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("restricted token: %d %s", code, env.Error)
	}

	var tok api.Operation
	_ = json.Unmarshal(env.Metadata, &tok)
	tenant := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))
	if code, env := tenant.join(tok.Metadata["secret"].(string)); code != http.StatusCreated {
		t.Fatalf("joining as the tenant: %d %s", code, env.Error)
	}

	code, data := tenant.do("GET", "/1.0/images?project=pt", nil)
	if code != http.StatusOK || !strings.Contains(string(data), tinyFP) { // positive control
		t.Fatalf("tenant's image list in pt: %d %s", code, data)
	}

	if strings.Contains(string(data), realFP) {
		t.Errorf("the tenant lists the default project's image: %s", data)
	}

	code, data = tenant.do("GET", "/1.0/images/aliases?project=pt&recursion=1", nil)
	if code != http.StatusOK || strings.Contains(string(data), "debian/12") || !strings.Contains(string(data), "mine") {
		t.Errorf("tenant's alias list in pt: %d %s", code, data)
	}

	for _, path := range []string{
		"/1.0/images/" + realFP + "?project=pt",
		"/1.0/images/" + realFP[:12] + "?project=pt",
		"/1.0/images/aliases/debian/12?project=pt",
		"/1.0/images/" + realFP + "/export?project=pt",
	} {
		if code, data := tenant.do("GET", path, nil); code != http.StatusNotFound {
			t.Errorf("GET %s as the tenant: %d %s, want 404", path, code, data)
		}
	}

	for _, path := range []string{"/1.0/images?project=default", "/1.0/images/" + realFP} {
		if code, data := tenant.do("GET", path, nil); code != http.StatusForbidden {
			t.Errorf("GET %s as the tenant: %d %s, want 403", path, code, data)
		}
	}

	for _, req := range []struct{ method, path string }{
		{"DELETE", "/1.0/images/" + realFP + "?project=pt"},
		{"DELETE", "/1.0/images/aliases/debian/12?project=pt"},
		{"PATCH", "/1.0/images/" + realFP + "?project=pt"},
	} {
		var body any
		if req.method == "PATCH" {
			body = map[string]any{"properties": map[string]string{"owner": "tenant"}}
		}

		// A tenant changes no image today (403); were it allowed to, the default
		// project's image would still not be pt's to find (404).
		if code, data := tenant.do(req.method, req.path, body); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("%s %s as the tenant: %d %s, want 403 or 404", req.method, req.path, code, data)
		}
	}

	code, img := projectImage(t, d, "default", realFP)
	if code != http.StatusOK || img.Properties["owner"] != "" {
		t.Errorf("the default project's image after the tenant's attempts: %d %v", code, img.Properties)
	}

	if code, _ := d.raw("GET", "/1.0/images/aliases/debian/12", nil); code != http.StatusOK {
		t.Errorf("the default project's alias after the tenant's attempts: %d", code)
	}
}

// TestAttackProjectImageSecretScope: an image secret made in one project opens that
// project's image only. The same file is a private image of the default project too; a
// client holding project pa's secret must not read the default project's record or
// file with it. Positive control: the secret opens pa's image.
func TestAttackProjectImageSecretScope(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)
	tiny := absoluteNamesImage(t)
	fp := fileSHA256(t, tiny)

	l.must("project", "create", "pa")
	t.Cleanup(func() {
		_, _ = l.run("image", "delete", fp, "--project", "pa")
		_, _ = l.run("project", "delete", "pa")
	})

	l.must("image", "import", tiny, "--project", "pa")
	l.must("image", "import", tiny, "--project", "default")

	code, env := d.raw("POST", "/1.0/images/"+fp+"/secret?project=pa", nil)
	if code != http.StatusAccepted {
		t.Fatalf("secret in pa: %d %s", code, env.Error)
	}

	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	secret, _ := op.Metadata["secret"].(string)
	if secret == "" {
		t.Fatalf("secret operation: %+v", op)
	}

	anon := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert()))
	for _, path := range []string{
		"/1.0/images/" + fp + "?secret=" + secret,
		"/1.0/images/" + fp + "?project=default&secret=" + secret,
	} {
		if code, data := anon.do("GET", path, nil); code != http.StatusNotFound {
			t.Errorf("GET %s with pa's secret: %d %.200s, want 404", path, code, data)
		}
	}

	// The record read does not use the token up when refused: the control still works.
	if code, data := anon.do("GET", "/1.0/images/"+fp+"?project=pa&secret="+secret, nil); code != http.StatusOK {
		t.Errorf("GET pa's image with its secret: %d %.200s", code, data)
	}

	if code, _ := anon.do("GET", "/1.0/images/"+fp+"/export?secret="+secret, nil); code != http.StatusNotFound {
		t.Errorf("export of the default project's image with pa's secret: %d, want 404", code)
	}
}
