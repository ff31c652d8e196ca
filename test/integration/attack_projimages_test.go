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
