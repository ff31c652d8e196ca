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
	parallel(t)
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

// TestAttackProjectsPullNameOracle: a launch from a remote server answers a duplicate
// name with 409 before its download; the name must be looked up in the tenant's project,
// or the 409 tells a tenant which instance names the default project has (and refuses
// its own launch of such a name). The remote is a closed loopback port: the download
// fails in the operation, after the synchronous answer this test reads. Positive
// control: the tenant's own instance of a name is a 409. The default project's instance
// is unchanged (still there, still stopped).
func TestAttackProjectsPullNameOracle(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)

	l.must("project", "create", "tn", "-c", "restricted=true", "-c", "features.images=false", "-c", "features.profiles=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "mybox", "--project", "tn")
		_, _ = l.run("delete", "-f", "adminbox")
		_, _ = l.run("project", "delete", "tn")
	})

	l.must("init", "debian/12", "adminbox")
	l.must("init", "debian/12", "mybox", "--project", "tn")

	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["tn"],"token":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("restricted token: %d %s", code, env.Error)
	}

	var tok api.Operation
	_ = json.Unmarshal(env.Metadata, &tok)
	tenant := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))
	if code, env := tenant.join(tok.Metadata["secret"].(string)); code != http.StatusCreated {
		t.Fatalf("joining as the tenant: %d %s", code, env.Error)
	}

	launch := func(name string) (int, []byte) {
		return tenant.do("POST", "/1.0/instances?project=tn", map[string]any{
			"name":   name,
			"source": map[string]any{"type": "image", "mode": "pull", "server": "https://127.0.0.1:1", "protocol": "lxd", "alias": "x"},
		})
	}

	// The attack: probing the default project's names.
	if code, data := launch("adminbox"); code == http.StatusConflict || strings.Contains(string(data), "already exists") {
		t.Errorf("the tenant learns the default project's instance name: %d %s", code, data)
	}

	// Positive control: its own instance's name is a duplicate.
	if code, data := launch("mybox"); code != http.StatusConflict {
		t.Errorf("the tenant's own duplicate name: %d %s", code, data)
	}

	// A restricted project that shares the default project's images may not add to
	// them through a launch from a remote (it may not upload one either): refused
	// before any download.
	if code, data := launch("newbox"); code != http.StatusForbidden || !strings.Contains(string(data), "features.images") {
		t.Errorf("a tenant's remote launch into the shared image set: %d %s", code, data)
	}

	// The target is unchanged.
	out := l.must("list", "adminbox", "--format", "csv", "-c", "ns")
	if !strings.Contains(out, "adminbox,STOPPED") {
		t.Errorf("the default project's instance:\n%s", out)
	}
}
