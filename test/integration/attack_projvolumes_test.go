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

// TestAttackProjectsVolumesTenant: a tenant (a certificate restricted to its restricted
// project) must not reach the default project's custom volumes by name: not list,
// read, snapshot, delete, copy nor attach them. Its project owns its volumes
// (features.storage.volumes, which a restricted project may not turn off), and every
// volume name it sends is looked up among them only. Positive control: the same
// requests on its own volume of the same kind work. The default project's volume is
// unchanged afterwards (content, no snapshot, not deleted, attached to nobody).
func TestAttackProjectsVolumesTenant(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)

	l.must("project", "create", "tv", "-c", "restricted=true", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "t1", "--project", "tv")
		_, _ = l.run("delete", "-f", "t2", "--project", "tv")
		_, _ = l.run("storage", "volume", "delete", "default", "mine", "--project", "tv")
		_, _ = l.run("storage", "volume", "delete", "default", "stolen", "--project", "tv")
		_, _ = l.run("storage", "volume", "delete", "default", "secret")
		_, _ = l.run("project", "delete", "tv")
		_, _ = l.run("project", "delete", "tvopen")
	})

	// The administrator's volume, with content.
	l.must("storage", "volume", "create", "default", "secret")
	flag := filepath.Join(d.dir, "storage-pools", "default", "custom", "secret", "flag")
	err := os.WriteFile(flag, []byte("admin data\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	// A restricted project may not use the default project's volumes.
	out := l.fails("project", "create", "tvopen", "-c", "restricted=true", "-c", "features.storage.volumes=false")
	if !strings.Contains(out, "features.storage.volumes") {
		t.Errorf("a restricted project without volumes of its own refused with:\n%s", out)
	}

	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["tv"],"token":true}`))
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

	// The attacks, by name, from the tenant's project.
	code, data := tenant.do("GET", vols+"?project=tv&recursion=1", nil)
	if code != http.StatusOK || strings.Contains(string(data), "secret") {
		t.Errorf("the tenant's volume list: %d %s", code, data)
	}

	if code, data := tenant.do("GET", vols+"/secret?project=tv", nil); code != http.StatusNotFound {
		t.Errorf("the tenant reads the default project's volume: %d %s", code, data)
	}

	if code, data := tenant.do("POST", vols+"/secret/snapshots?project=tv", map[string]any{"name": "x"}); code != http.StatusNotFound {
		t.Errorf("the tenant snapshots the default project's volume: %d %s", code, data)
	}

	if code, data := tenant.do("DELETE", vols+"/secret?project=tv", nil); code != http.StatusNotFound {
		t.Errorf("the tenant deletes the default project's volume: %d %s", code, data)
	}

	copyReq := map[string]any{"name": "stolen", "type": "custom", "source": map[string]any{"type": "copy", "pool": "default", "name": "secret", "project": "default"}}
	if code, data := tenant.do("POST", vols+"?project=tv", copyReq); code != http.StatusForbidden {
		t.Errorf("the tenant copies the default project's volume: %d %s", code, data)
	}

	if code, data := tenant.do("GET", vols+"/secret?project=default", nil); code != http.StatusForbidden {
		t.Errorf("the tenant reads the default project's volume in the default project: %d %s", code, data)
	}

	attach := func(name, source string) (int, []byte) {
		return tenant.do("POST", "/1.0/instances?project=tv", map[string]any{
			"name":    name,
			"source":  map[string]any{"type": "image", "alias": "debian/12"},
			"devices": map[string]any{"v": map[string]any{"type": "disk", "pool": "default", "source": source, "path": "/mnt"}},
		})
	}

	if code, data := attach("t1", "secret"); code != http.StatusNotFound {
		t.Errorf("the tenant attaches the default project's volume to a new container: %d %s", code, data)
	}

	// Positive control: its own volume, by the same requests.
	if code, data := tenant.do("POST", vols+"?project=tv", map[string]any{"name": "mine", "type": "custom"}); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("the tenant creates its own volume: %d %s", code, data)
	}

	code, data = tenant.do("GET", vols+"?project=tv", nil)
	if code != http.StatusOK || !strings.Contains(string(data), "/mine?project=tv") {
		t.Errorf("the tenant's list lacks its own volume: %d %s", code, data)
	}

	if code, data := tenant.do("GET", vols+"/mine?project=tv", nil); code != http.StatusOK {
		t.Errorf("the tenant reads its own volume: %d %s", code, data)
	}

	if code, data := tenant.do("POST", vols+"/mine/snapshots?project=tv", map[string]any{"name": "x"}); code != http.StatusAccepted {
		t.Errorf("the tenant snapshots its own volume: %d %s", code, data)
	}

	// The pool's users name its own volume, not the default project's.
	code, data = tenant.do("GET", "/1.0/storage-pools/default?project=tv", nil)
	if code != http.StatusOK || !strings.Contains(string(data), "/mine?project=tv") || strings.Contains(string(data), "secret") {
		t.Errorf("the pool as the tenant reads it: %d %s", code, data)
	}

	if code, data := attach("t2", "mine"); code != http.StatusAccepted {
		t.Errorf("the tenant attaches its own volume to a new container: %d %s", code, data)
	}

	// The target is unchanged.
	got, err := os.ReadFile(flag)
	if err != nil || string(got) != "admin data\n" {
		t.Errorf("the default project's volume holds %q, %v", got, err)
	}

	out = l.must("storage", "volume", "show", "default", "secret")
	if !strings.Contains(out, "used_by: []") {
		t.Errorf("the default project's volume is used:\n%s", out)
	}

	if code, env := d.raw("GET", vols+"/secret/snapshots", nil); code != http.StatusOK || string(env.Metadata) != "[]" {
		t.Errorf("the default project's volume's snapshots: %d %s", code, env.Metadata)
	}

	if out := l.must("storage", "volume", "list", "default", "--format", "csv", "--project", "tv"); strings.Contains(out, "stolen") {
		t.Errorf("the copy of the default project's volume exists in tv:\n%s", out)
	}
}
