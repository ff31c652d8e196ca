package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestAttackProjectsConfigSpellings: a project's config accepts every spelling of a
// boolean ("True", "1", "yes", "on"), and the API's scope checks read them all as true.
// A tenant of a project written restricted=True with features.storage.volumes=True and
// features.profiles=True is let through to "its own" volumes, and its instances expand
// "its own" profiles; these must then be its project's, not the default project's (the
// database layer once read only the exact string "true", so the tenant landed on the
// default project's volumes, and its instances on the default project's profiles).
// Positive control: the tenant reads and creates its own.
// The default project's volume and default profile are unchanged afterwards.
func TestAttackProjectsConfigSpellings(t *testing.T) {
	requireSetup(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)

	l.must("project", "create", "ts", "-c", "restricted=True", "-c", "features.storage.volumes=True",
		"-c", "features.profiles=True", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("storage", "volume", "delete", "default", "mine", "--project", "ts")
		_, _ = l.run("storage", "volume", "delete", "default", "mine")
		_, _ = l.run("storage", "volume", "delete", "default", "secret")
		_, _ = l.run("project", "delete", "ts")
	})

	// The administrator's volume, with content, and the default profile as it is.
	l.must("storage", "volume", "create", "default", "secret")
	flag := filepath.Join(d.dir, "storage-pools", "default", "custom", "secret", "flag")
	err := os.WriteFile(flag, []byte("admin data\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	profileBefore := l.must("profile", "show", "default")

	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["ts"],"token":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("restricted token: %d %s", code, env.Error)
	}

	var tok api.Operation
	_ = json.Unmarshal(env.Metadata, &tok)
	tenant := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))
	if code, env := tenant.join(tok.Metadata["secret"].(string)); code != http.StatusCreated {
		t.Fatalf("joining as the tenant: %d %s", code, env.Error)
	}

	vols := "/1.0/storage-pools/default/volumes/custom"

	// The attacks.
	if code, data := tenant.do("GET", vols+"/secret?project=ts", nil); code != http.StatusNotFound {
		t.Errorf("the tenant reads the default project's volume: %d %s", code, data)
	}

	code, data := tenant.do("GET", vols+"?project=ts", nil)
	if code != http.StatusOK || strings.Contains(string(data), "secret") {
		t.Errorf("the tenant's volume list: %d %s", code, data)
	}

	// Its instances expand its project's profiles, not the default project's (whose
	// devices and config the administrator chose for the default project's instances).
	code, data = tenant.do("GET", "/1.0/profiles/default?project=ts", nil)
	if code != http.StatusOK || !strings.Contains(string(data), "for project ts") {
		t.Errorf("the tenant's default profile is not its project's: %d %s", code, data)
	}

	// Positive control: its own volume and profile, by the same requests.
	if code, data := tenant.do("POST", vols+"?project=ts", map[string]any{"name": "mine", "type": "custom"}); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("the tenant creates its own volume: %d %s", code, data)
	}

	if code, data := tenant.do("GET", vols+"/mine?project=ts", nil); code != http.StatusOK {
		t.Errorf("the tenant reads its own volume: %d %s", code, data)
	}

	if out := l.must("storage", "volume", "list", "default", "--format", "csv", "--project", "ts"); !strings.Contains(out, "mine") {
		t.Errorf("the tenant's volume is not in its project:\n%s", out)
	}

	if out := l.must("profile", "show", "default", "--project", "ts"); !strings.Contains(out, "for project ts") {
		t.Errorf("the project's own default profile:\n%s", out)
	}

	// The targets are unchanged.
	got, err := os.ReadFile(flag)
	if err != nil || string(got) != "admin data\n" {
		t.Errorf("the default project's volume holds %q, %v", got, err)
	}

	if out := l.must("storage", "volume", "list", "default", "--format", "csv"); strings.Contains(out, "mine") {
		t.Errorf("the tenant's volume landed in the default project:\n%s", out)
	}

	if after := l.must("profile", "show", "default"); after != profileBefore {
		t.Errorf("the default project's default profile changed:\n%s\nwas:\n%s", after, profileBefore)
	}
}
