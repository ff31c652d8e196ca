package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/backup"
	"github.com/berth-dev/berth/shared/api"
)

// TestAttackProjectsRestoreLoosens: a snapshot restore writes the snapshot's config and
// devices back as the instance's. In a restricted project that must be checked against
// the project's restrictions as they are now, or a tenant snapshots a config its project
// allowed once (security.nesting here), the administrator tightens the project, and the
// restore brings the forbidden config back.
func TestAttackProjectsRestoreLoosens(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "tp1", "-c", "restricted=true", "-c", "restricted.containers.nesting=allow", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "r1", "--project", "tp1")
		_, _ = l.run("delete", "-f", "r2", "--project", "tp1")
		_, _ = l.run("project", "delete", "tp1")
	})

	l.must("init", "debian/12", "r1", "--project", "tp1", "-c", "security.nesting=true")
	l.must("snapshot", "r1", "s0", "--project", "tp1")
	l.must("config", "unset", "r1", "security.nesting", "--project", "tp1")
	l.must("project", "set", "tp1", "restricted.containers.nesting=block")

	// Positive control: the project now refuses nesting on a direct edit.
	out := l.fails("config", "set", "r1", "security.nesting=true", "--project", "tp1")
	if !strings.Contains(out, "restricted.containers.nesting") {
		t.Fatalf("direct nesting refused with:\n%s", out)
	}

	// A restore of a snapshot without the forbidden key still works.
	l.must("init", "debian/12", "r2", "--project", "tp1")
	l.must("snapshot", "r2", "ok", "--project", "tp1")
	l.must("restore", "r2", "ok", "--project", "tp1")

	// The attack: the restore must be refused, naming the key, and change nothing.
	out, err := l.run("restore", "r1", "s0", "--project", "tp1")
	if err == nil || !strings.Contains(out, "restricted.containers.nesting") {
		t.Errorf("restore of a snapshot with nesting in a project that blocks it: %v\n%s", err, out)
	}

	if v := strings.TrimSpace(l.must("config", "get", "r1", "security.nesting", "--project", "tp1")); v != "" {
		t.Errorf("security.nesting is %q after the refused restore", v)
	}
}

// TestAttackProjectsTenantUnrestrictedReads: a restricted certificate works only in the
// projects of its list that are restricted (restricted=true). A project of its list that
// is not restricted must stay out of reach through the paths that span projects too:
// all-projects=true lists and an operation fetched by id under one of its own projects
// (an operation's metadata holds its websocket secrets).
func TestAttackProjectsTenantUnrestrictedReads(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	l := newLXCRunner(t, d)
	l.must("project", "create", "tq1", "-c", "restricted=true", "-c", "features.images=false")
	l.must("project", "create", "tq3", "-c", "features.images=false") // in the tenant's list, but not restricted
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "mine", "--project", "tq1")
		_, _ = l.run("delete", "-f", "admins", "--project", "tq3")
		_, _ = l.run("project", "delete", "tq1")
		_, _ = l.run("project", "delete", "tq3")
	})

	l.must("init", "debian/12", "mine", "--project", "tq1")
	l.must("init", "debian/12", "admins", "--project", "tq3")

	code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["tq1","tq3"],"token":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("restricted token: %d %s", code, env.Error)
	}

	var tok api.Operation
	_ = json.Unmarshal(env.Metadata, &tok)
	tenant := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))
	if code, env := tenant.join(tok.Metadata["secret"].(string)); code != http.StatusCreated {
		t.Fatalf("joining as the tenant: %d %s", code, env.Error)
	}

	// An operation of the unrestricted project, still listed once done.
	code, env = d.raw("PUT", "/1.0/instances/admins/state?project=tq3", strings.NewReader(`{"action":"stop","force":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("operation in tq3: %d %s", code, env.Error)
	}

	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)

	code, data := tenant.do("GET", "/1.0/instances?all-projects=true", nil)
	list := string(data)
	if code != http.StatusOK || !strings.Contains(list, "/1.0/instances/mine") { // positive control
		t.Fatalf("tenant's all-projects list: %d %s", code, list)
	}

	if strings.Contains(list, "admins") {
		t.Errorf("the tenant lists an instance of an unrestricted project: %s", list)
	}

	code, data = tenant.do("GET", "/1.0/operations?all-projects=true&recursion=1", nil)
	if code == http.StatusOK && strings.Contains(string(data), op.ID) {
		t.Errorf("the tenant lists an operation of an unrestricted project: %s", data)
	}

	if code, data := tenant.do("GET", "/1.0/operations/"+op.ID+"?project=tq1", nil); code != http.StatusNotFound {
		t.Errorf("the tenant reads an operation of an unrestricted project: %d %s", code, data)
	}
}

// TestAttackProjectsBackupSnapshotProfile: a backup is hostile input, and the profiles
// its snapshots name become the instance's on a restore. A snapshot naming another
// project's profile by its key ("<project>/<name>") must not give the imported instance
// that profile (its config, its devices).
func TestAttackProjectsBackupSnapshotProfile(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)
	l.must("project", "create", "pa1", "-c", "features.profiles=true", "-c", "features.images=false")
	l.must("project", "create", "pa2", "-c", "features.profiles=true", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "imp", "--project", "pa1")
		_, _ = l.run("profile", "delete", "secret", "--project", "pa2")
		_, _ = l.run("project", "delete", "pa1")
		_, _ = l.run("project", "delete", "pa2")
	})

	l.must("profile", "create", "secret", "--project", "pa2")
	l.must("profile", "set", "secret", "user.secret=s3cret", "--project", "pa2")

	root := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}
	p := backupTarball(t, t.TempDir(), "imp", map[string]string{}, root, root)
	rewriteSnapshotProfiles(t, p, []string{"pa2/secret"})
	l.must("import", p, "--project", "pa1")
	l.must("restore", "imp", "snap0", "--project", "pa1") // positive control: it restores

	out := l.must("config", "show", "imp", "--expanded", "--project", "pa1")
	if strings.Contains(out, "s3cret") || strings.Contains(out, "secret") {
		t.Errorf("the imported instance uses another project's profile:\n%s", out)
	}

	if v := strings.TrimSpace(l.must("profile", "get", "secret", "user.secret", "--project", "pa2")); v != "s3cret" {
		t.Errorf("pa2's profile changed: %q", v)
	}
}

// rewriteSnapshotProfiles sets the profiles of every snapshot in backup p's index.
func rewriteSnapshotProfiles(t *testing.T, p string, profiles []string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}

	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}

	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	ogz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(ogz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}

		if err != nil {
			t.Fatal(err)
		}

		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}

		if h.Name == "backup/index.yaml" {
			var index backup.Index
			err := yaml.Unmarshal(data, &index)
			if err != nil {
				t.Fatal(err)
			}

			for i := range index.Config.Snapshots {
				index.Config.Snapshots[i].Profiles = profiles
			}

			data, err = yaml.Marshal(&index)
			if err != nil {
				t.Fatal(err)
			}

			h.Size = int64(len(data))
		}

		if tw.WriteHeader(h) != nil {
			t.Fatal("writing header")
		}

		_, err = tw.Write(data)
		if err != nil {
			t.Fatal(err)
		}
	}

	f.Close()
	if tw.Close() != nil || ogz.Close() != nil {
		t.Fatal("closing backup")
	}

	err = os.WriteFile(p, buf.Bytes(), 0o644)
	if err != nil {
		t.Fatal(err)
	}
}
