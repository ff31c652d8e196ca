package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 13's image and instance endpoints, driven as an ops tool would: the stock lxc
// (5.0) where it has a command, raw requests elsewhere. One daemon, one container.

// in is l reporting to t (a subtest's).
func (l *lxcTool) in(t *testing.T) *lxcTool {
	c := *l
	c.t = t
	return &c
}

// runIn runs lxc with stdin.
func (l *lxcTool) runIn(stdin string, args ...string) (string, error) {
	cmd := exec.Command(l.bin, args...)
	cmd.Env = l.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// absoluteNamesImage is a small unified image whose members have absolute names, as
// LXD's own test images do.
func absoluteNamesImage(t *testing.T) string {
	t.Helper()

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range []struct{ name, body string }{
		{"/metadata.yaml", "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: busybox\n"},
		{"/rootfs/", ""},
		{"/rootfs/etc/", ""},
		{"/rootfs/etc/inittab", "::sysinit:/etc/init.d/rcS\n"},
	} {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}

		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}

		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}

	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}

	p := filepath.Join(t.TempDir(), "abs.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	return p
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()

	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}

	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (d *daemon) waitOp(env api.Response) (int, api.Response) {
	d.t.Helper()

	op, err := env.MetadataAsOperation()
	if err != nil {
		d.t.Fatalf("not an operation: %v", err)
	}

	return d.raw("GET", "/1.0/operations/"+op.ID+"/wait?timeout=120", nil)
}

func (d *daemon) imageOf(t *testing.T, fp string) (int, api.Image) {
	t.Helper()

	code, env := d.raw("GET", "/1.0/images/"+fp, nil)
	var img api.Image
	_ = json.Unmarshal(env.Metadata, &img)

	return code, img
}

// poolImages lists the image trees of the daemon's pool.
func (d *daemon) poolImages(t *testing.T) []string {
	t.Helper()

	dirs, _ := filepath.Glob(filepath.Join(d.dir, "storage-pools", "*", "images", "*"))
	return dirs
}

func TestImageEndpoints(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc := newLXC(t, d.dir)
	fp := fileSHA256(t, imagePath)

	t.Run("AbsoluteMemberNames", func(t *testing.T) {
		lxc := lxc.in(t)
		out := lxc.must("image", "import", absoluteNamesImage(t), "--alias", "abs")
		if !strings.Contains(out, "Fingerprint") && !strings.Contains(out, "fingerprint") {
			t.Errorf("lxc image import said %q", out)
		}

		lxc.must("image", "delete", "abs")
	})

	t.Run("Export", func(t *testing.T) {
		lxc := lxc.in(t)
		dir := t.TempDir()
		lxc.must("image", "export", "debian/12", dir+"/")
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) != 1 {
			t.Fatalf("lxc image export wrote %v", files)
		}

		if got := fileSHA256(t, files[0]); got != fp {
			t.Errorf("exported image hashes to %s, want the fingerprint %s", got, fp)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		lxc := lxc.in(t)
		lxc.must("query", "-X", "PATCH", "/1.0/images/"+fp, "-d", `{"properties":{"team":"ops"},"public":true}`)
		_, img := d.imageOf(t, fp)
		if img.Properties["team"] != "ops" || img.Properties["os"] == "" || !img.Public {
			t.Errorf("after PATCH: public %v, properties %v (want team added, os kept)", img.Public, img.Properties)
		}

		lxc.must("query", "-X", "PATCH", "/1.0/images/"+fp, "-d", `{"public":false}`)
		if _, img := d.imageOf(t, fp); img.Public || img.Properties["team"] != "ops" {
			t.Errorf("second PATCH: public %v, properties %v", img.Public, img.Properties)
		}

		code, env := d.raw("PATCH", "/1.0/images/"+fp, strings.NewReader(`{"public": "yes"}`))
		if code != http.StatusBadRequest {
			t.Errorf("malformed PATCH: %d %s", code, env.Error)
		}
	})

	t.Run("Refresh", func(t *testing.T) {
		lxc := lxc.in(t)
		out, err := lxc.run("image", "refresh", "debian/12")
		if err == nil || !strings.Contains(out, "Image source not found") {
			t.Errorf("lxc image refresh of an image without a source: %v\n%s", err, out)
		}
	})

	t.Run("Secret", func(t *testing.T) {
		addr := d.listenHTTPS()
		anon := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))

		if code, _ := anon.do("GET", "/1.0/images/"+fp, nil); code != http.StatusNotFound {
			t.Fatalf("private image without a secret: %d", code)
		}

		code, env := d.raw("POST", "/1.0/images/"+fp+"/secret", nil)
		if code != http.StatusAccepted {
			t.Fatalf("POST secret: %d %s", code, env.Error)
		}

		op, _ := env.MetadataAsOperation()
		secret, _ := op.Metadata["secret"].(string)
		if secret == "" || op.Class != api.OperationClassToken {
			t.Fatalf("secret operation: %+v", op)
		}

		// Exactly that image: another fingerprint, or a prefix, is not opened by it.
		for _, p := range []string{"/1.0/images/" + fp[:12] + "?secret=" + secret, "/1.0/images/" + strings.Repeat("0", 64) + "?secret=" + secret} {
			if code, _ := anon.do("GET", p, nil); code != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", p, code)
			}
		}

		if code, data := anon.do("GET", "/1.0/images/"+fp+"?secret="+secret, nil); code != http.StatusOK {
			t.Errorf("GET with the secret: %d %s", code, data)
		}

		if code, _ := anon.do("GET", "/1.0/images/"+fp+"?secret="+secret, nil); code != http.StatusNotFound {
			t.Errorf("second GET with the secret: %d, want 404", code)
		}

		if code, data := anon.do("GET", "/1.0/images/"+fp+"/export?secret="+secret, nil); code != http.StatusOK || !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Errorf("export with the secret: %d, %d bytes", code, len(data))
		}

		if code, _ := anon.do("GET", "/1.0/images/"+fp+"/export?secret="+secret, nil); code != http.StatusNotFound {
			t.Errorf("second export with the secret: %d, want 404", code)
		}

		if _, env := d.raw("GET", "/1.0/operations/"+op.ID, nil); !strings.Contains(string(env.Metadata), `"Cancelled"`) {
			t.Errorf("the secret's operation did not end with its use: %s", env.Metadata)
		}
	})

	t.Run("InstanceMetadata", func(t *testing.T) {
		lxc := lxc.in(t)
		lxc.must("launch", "debian/12", "c1") // used by the next subtests; the daemon's cleanup deletes it

		out := lxc.must("config", "metadata", "show", "c1")
		if !strings.Contains(out, "architecture: x86_64") || !strings.Contains(out, "templates:") {
			t.Fatalf("lxc config metadata show:\n%s", out)
		}

		edited := strings.Replace(out, "properties:", "properties:\n  team: ops", 1)
		if out, err := lxc.runIn(edited, "config", "metadata", "edit", "c1"); err != nil {
			t.Fatalf("lxc config metadata edit: %v\n%s", err, out)
		}

		if out := lxc.must("config", "metadata", "show", "c1"); !strings.Contains(out, "team: ops") {
			t.Errorf("edit not kept:\n%s", out)
		}

		if out, err := lxc.runIn("architecture: x86_64\ntemplates:\n  etc/relative:\n    template: x.tpl\n", "config", "metadata", "edit", "c1"); err == nil {
			t.Errorf("invalid metadata accepted:\n%s", out)
		}

		lxc.must("config", "template", "create", "c1", "motd.tpl")
		if out, err := lxc.runIn("hello {{ container.name }}\n", "config", "template", "edit", "c1", "motd.tpl"); err != nil {
			t.Fatalf("lxc config template edit: %v\n%s", err, out)
		}

		if out := lxc.must("config", "template", "show", "c1", "motd.tpl"); !strings.Contains(out, "hello {{ container.name }}") {
			t.Errorf("lxc config template show:\n%s", out)
		}

		if out := lxc.must("config", "template", "list", "c1"); !strings.Contains(out, "motd.tpl") {
			t.Errorf("lxc config template list:\n%s", out)
		}

		for _, bad := range []string{"../escape", ".hidden", "a/b"} {
			code, _ := d.raw("POST", "/1.0/instances/c1/metadata/templates?path="+bad, strings.NewReader("x"))
			if code != http.StatusBadRequest {
				t.Errorf("template %q: %d, want 400", bad, code)
			}
		}

		lxc.must("config", "template", "delete", "c1", "motd.tpl")
		if out := lxc.must("config", "template", "list", "c1"); strings.Contains(out, "motd.tpl") {
			t.Errorf("deleted template still listed:\n%s", out)
		}

		if out := lxc.must("info", "--show-log", "c1"); !strings.Contains(out, "Log:") {
			t.Errorf("lxc info --show-log:\n%s", out)
		}
	})

	t.Run("StopAll", func(t *testing.T) {
		lxc := lxc.in(t)
		// lxc 5.0's stop --all changes instances one by one; scripts send the bulk PUT.
		code, env := d.raw("PUT", "/1.0/instances", strings.NewReader(`{"state":{"action":"stop","timeout":30}}`))
		if code != http.StatusAccepted {
			t.Fatalf("bulk stop: %d %s", code, env.Error)
		}

		if op, _ := env.MetadataAsOperation(); len(op.Resources["instances"]) != 1 {
			t.Errorf("bulk stop resources: %v", op.Resources)
		}

		if code, env := d.waitOp(env); code != http.StatusOK || !strings.Contains(string(env.Metadata), `"Success"`) {
			t.Fatalf("bulk stop operation: %d %s %s", code, env.Error, env.Metadata)
		}

		if out := lxc.must("list", "--format", "csv", "-c", "ns"); !strings.Contains(out, "c1,STOPPED") {
			t.Errorf("after the bulk stop:\n%s", out)
		}

		lxc.must("stop", "--all") // nothing left to stop: no error

		code, env = d.raw("PUT", "/1.0/instances", strings.NewReader(`{"state":{"action":"jump"}}`))
		if code != http.StatusBadRequest {
			t.Errorf("unknown bulk action: %d %s", code, env.Error)
		}
	})

	t.Run("ExportInstanceOnly", func(t *testing.T) {
		lxc := lxc.in(t)
		out := filepath.Join(t.TempDir(), "c1.tar.gz")
		lxc.must("export", "c1", out, "--instance-only")
		list, err := exec.Command("tar", "-tzf", out).CombinedOutput()
		if err != nil {
			t.Fatalf("tar -t: %v\n%s", err, list)
		}

		if strings.Contains(string(list), "backup/snapshots") {
			t.Errorf("instance-only export has backup/snapshots/")
		}
	})

	t.Run("DeleteWhileUsed", func(t *testing.T) {
		lxc := lxc.in(t)
		lxc.must("image", "delete", "debian/12")
		if out := lxc.must("image", "list", "--format", "csv"); strings.TrimSpace(out) != "" {
			t.Errorf("image still listed:\n%s", out)
		}

		lxc.must("start", "c1")
		if st := d.waitRunning("c1"); st != "running" {
			t.Errorf("c1 on a deleted image: systemd %q", st)
		}

		if len(d.poolImages(t)) != 1 {
			t.Errorf("pool images while c1 sits on the deleted one: %v", d.poolImages(t))
		}

		lxc.must("delete", "-f", "c1")
		if got := d.poolImages(t); len(got) != 0 {
			t.Errorf("pool images after the last instance went: %v", got)
		}
	})

	t.Run("DeleteRacesReimport", func(t *testing.T) {
		lxc := lxc.in(t)
		if code, _ := d.imageOf(t, fp); code == http.StatusNotFound {
			d.berth("image", "import", imagePath, "--alias", "debian/12")
		}

		code, del := d.raw("DELETE", "/1.0/images/"+fp, nil)
		if code != http.StatusAccepted {
			t.Fatalf("DELETE: %d %s", code, del.Error)
		}

		if code, _ := d.imageOf(t, fp); code != http.StatusNotFound {
			t.Errorf("image still there when its DELETE is answered: %d", code)
		}

		if code, _ := d.raw("GET", "/1.0/images/aliases/debian/12", nil); code != http.StatusNotFound {
			t.Errorf("alias still there when the DELETE is answered: %d", code)
		}

		out, err := d.berthErr("image", "import", imagePath, "--alias", "debian/12")
		if err != nil {
			t.Fatalf("re-import during the delete: %v\n%s", err, out)
		}

		if code, env := d.waitOp(del); code != http.StatusOK {
			t.Fatalf("delete operation: %d %s", code, env.Error)
		}

		if code, _ := d.imageOf(t, fp); code != http.StatusOK {
			t.Fatalf("the pending delete removed the re-imported image: %d", code)
		}

		if _, err := os.Stat(filepath.Join(d.dir, "images", fp)); err != nil {
			t.Errorf("re-imported image lost its file: %v", err)
		}

		lxc.must("init", "debian/12", "c2") // the re-imported image makes instances
		lxc.must("delete", "c2")
	})
}
