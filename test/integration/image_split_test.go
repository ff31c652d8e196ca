package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/streams"
	"github.com/berth-dev/berth/test/testutil"
)

// makeSplitImage turns the unified test image into LXD's split form: a metadata
// tarball (metadata.yaml, templates/) and a squashfs of rootfs/ made by Debian's
// mksquashfs, as distrobuilder does. It returns both paths and the fingerprint LXD gives
// such an image: the SHA-256 of the metadata tarball followed by the squashfs.
func makeSplitImage(t *testing.T, comp string) (meta, rootfs, fp string) {
	t.Helper()
	mksquashfs := testutil.LookPath(t, "mksquashfs", "Debian package squashfs-tools")

	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
	}

	run("mkdir", tree)
	run("tar", "-xpf", imagePath, "-C", tree, "--numeric-owner")
	meta = filepath.Join(dir, "meta.tar.xz")
	run("tar", "-cJf", meta, "-C", tree, "--numeric-owner", "metadata.yaml", "templates")
	rootfs = filepath.Join(dir, "rootfs.squashfs")
	run(mksquashfs, filepath.Join(tree, "rootfs"), rootfs, "-noappend", "-quiet", "-no-progress", "-comp", comp)

	h := sha256.New()
	for _, p := range []string{meta, rootfs} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}

		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	return meta, rootfs, hex.EncodeToString(h.Sum(nil))
}

// Issue 15: a split image (metadata tarball + squashfs rootfs). The stock lxc imports
// it into berthd (multipart/form-data upload), the fingerprint is LXD's, a container
// launched from it runs with the image's files, and lxc image export gives back the
// same two files (a multipart answer). Before split images were supported the import
// answered 501.
func TestImageSplitImport(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	meta, rootfs, fp := makeSplitImage(t, "xz")
	lxc := newLXC(t, d.dir)

	out := lxc.must("image", "import", meta, rootfs, "--alias", "split")
	if !strings.Contains(out, fp) {
		t.Fatalf("lxc image import: %q, want fingerprint %s (sha256 of metadata then rootfs)", out, fp)
	}

	code, img := d.imageOf(t, fp)
	if code != http.StatusOK || img.Size != fileSize(t, meta)+fileSize(t, rootfs) {
		t.Fatalf("image %s: %d, size %d", fp, code, img.Size)
	}

	noSpool(t, d)

	lxc.must("launch", "split", "sq1")
	d.waitRunning("sq1")

	got, err := d.inside("sq1", "sh", "-c", "stat -c '%u %a' /usr/bin/passwd; cat /etc/os-release | head -1")
	if err != nil || !strings.Contains(got, "0 4755") || !strings.Contains(got, "Debian") {
		t.Fatalf("inside the container from the split image: %q %v", got, err)
	}

	// The export is the same two files, byte for byte.
	exp := t.TempDir()
	lxc.must("image", "export", "split", filepath.Join(exp, "out"))
	files, _ := filepath.Glob(filepath.Join(exp, "*"))
	if len(files) != 2 {
		t.Fatalf("lxc image export of a split image wrote %v, want two files", files)
	}

	sums := map[string]bool{fileSHA256(t, meta): true, fileSHA256(t, rootfs): true}
	for _, f := range files {
		if !sums[fileSHA256(t, f)] {
			t.Errorf("exported %s is not one of the imported files", f)
		}
	}

	// A second import of the same files is the same image.
	if out, err := lxc.run("image", "import", meta, rootfs); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("second import: %q %v, want already exists", out, err)
	}

	// A hostile rootfs part (not a squashfs) fails clearly and leaves nothing.
	bad := filepath.Join(t.TempDir(), "bad.squashfs")
	if err := os.WriteFile(bad, []byte("hsqs not really"), 0o600); err != nil {
		t.Fatal(err)
	}

	before := imageFingerprints(t, d)
	if out, err := lxc.run("image", "import", meta, bad); err == nil || !strings.Contains(out, "squashfs") {
		t.Errorf("import of a corrupt squashfs: %q %v, want a squashfs error", out, err)
	}

	if after := imageFingerprints(t, d); !equalSets(after, before) {
		t.Errorf("a failed split import changed the store: %v, was %v", after, before)
	}

	noSpool(t, d)
	leftovers, _ := filepath.Glob(filepath.Join(d.dir, "images", "*.rootfs"))
	if len(leftovers) != 1 {
		t.Errorf("rootfs files in the store: %v, want the one image's", leftovers)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()

	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}

	return st.Size()
}

// Issue 15: split images between a real LXD 5.0.2 and berthd. LXD and Berth agree on a
// split image's fingerprint; berthd pulls LXD's split image over the LXD protocol (the
// multipart export), and LXD pulls it back from berthd with the same fingerprint.
// Before split images were supported, berthd's pull failed ("only unified images can be
// downloaded").
func TestImageSplitLXD(t *testing.T) {
	parallel(t)
	l := startLXDPeer(t)
	meta, rootfs, fp := makeSplitImage(t, "gzip")
	l.must("image", "import", meta, rootfs, "--alias", "split")
	if got := l.fingerprintOf("split"); got != fp {
		t.Fatalf("LXD's fingerprint of the split image: %q, Berth's computation %s", got, fp)
	}

	b := startDaemon(t)
	b.listenHTTPS()
	lxc := newLXC(t, "")
	lxc.must("remote", "add", "L", l.token(t, "cli"))
	lxc.must("remote", "add", "B", b.trustToken("cli"))

	lxc.must("image", "copy", "L:split", "B:", "--alias", "from-lxd")
	code, img := b.imageOf(t, fp)
	if code != http.StatusOK || img.Fingerprint != fp {
		t.Fatalf("split image pulled from LXD: %d %q, want %s", code, img.Fingerprint, fp)
	}

	noSpool(t, b)

	if _, err := os.Stat(filepath.Join(b.dir, "images", fp+".rootfs")); err != nil {
		t.Fatalf("berthd did not keep the pulled image split: %v", err)
	}

	// And back: LXD pulls it from berthd (Berth's multipart export) as the same image.
	l.must("image", "delete", fp)
	lxc.must("image", "copy", "B:"+fp, "L:", "--alias", "from-berth")
	if got := l.fingerprintOf("from-berth"); got != fp {
		t.Fatalf("LXD's copy of Berth's split image: %q, want %s", got, fp)
	}

	// Each pushes it to the other (a multipart upload under a push token; berthd's push
	// answered 501 before), and lxc relays it both ways (downloads one side's multipart
	// export, uploads it to the other).
	for _, c := range []struct{ mode, from, to string }{{"push", "L:", "B:"}, {"relay", "L:", "B:"}, {"relay", "B:", "L:"}, {"push", "B:", "L:"}} {
		if c.to == "B:" {
			dropImage(t, b, fp)
		} else {
			l.must("image", "delete", fp)
		}

		lxc.must("image", "copy", c.from+fp, c.to, "--mode", c.mode)
		if c.to == "B:" {
			if code, img := b.imageOf(t, fp); code != http.StatusOK || img.Fingerprint != fp {
				t.Errorf("--mode %s %s→%s: %d %q, want %s", c.mode, c.from, c.to, code, img.Fingerprint, fp)
			}

			noSpool(t, b)
		} else if got := l.fingerprintOf(fp); got != fp {
			t.Errorf("--mode %s %s→%s: LXD has %q, want %s", c.mode, c.from, c.to, got, fp)
		}
	}
}

// Issue 15: a simplestreams server that publishes split images, as LXD's image servers
// do (an "lxd.tar.xz" item with combined_squashfs_sha256 and a "squashfs" item): the
// stock lxc lists it with that fingerprint and `lxc image copy s:ALIAS local:` makes
// berthd download both files and import the image split, with the same fingerprint.
// A squashfs whose bytes do not match leaves nothing. Before, berthd found no image.
func TestImageSplitStreams(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	meta, rootfs, fp := makeSplitImage(t, "xz")

	serve := func(rootfs string) (string, []byte) {
		tree := t.TempDir()
		for dst, src := range map[string]string{"images/split/lxd.tar.xz": meta, "images/split/root.squashfs": rootfs} {
			if out, err := exec.Command("install", "-D", "-m", "0644", src, filepath.Join(tree, dst)).CombinedOutput(); err != nil {
				t.Fatalf("install: %v %s", err, out)
			}
		}

		img := streams.Image{Fingerprint: fp, Size: 1, Path: "images/split/lxd.tar.xz", Created: time.Now(), Aliases: []string{"split/12"}, OS: "Debian", Release: "bookworm", Architecture: "amd64"}
		index, products, err := streams.Build([]streams.Image{img}, time.Now())
		if err != nil {
			t.Fatal(err)
		}

		p, err := streams.ParseProducts(products)
		if err != nil {
			t.Fatal(err)
		}

		for pk, prod := range p.Products {
			for vk := range prod.Versions {
				prod.Versions[vk] = streams.Version{Items: map[string]streams.Item{
					"lxd.tar.xz":    {Ftype: streams.FtypeSplitMeta, Path: "images/split/lxd.tar.xz", SHA256: fileSHA256(t, meta), Size: fileSize(t, meta), CombinedSquashfsSHA256: fp},
					"root.squashfs": {Ftype: streams.FtypeSquashfs, Path: "images/split/root.squashfs", SHA256: fileSHA256(t, rootfs), Size: fileSize(t, rootfs)},
				}}
			}

			p.Products[pk] = prod
		}

		products, _ = json.Marshal(p)
		for name, data := range map[string][]byte{streams.IndexPath: index, streams.ProductsPath: products} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755); err != nil {
				t.Fatal(err)
			}

			if err := os.WriteFile(filepath.Join(tree, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		srv := httptest.NewTLSServer(http.FileServer(http.Dir(tree)))
		t.Cleanup(srv.Close)
		return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	}

	url, certPEM := serve(rootfs)
	lxc := newLXC(t, d.dir)
	_, _ = lxc.run("list")
	if err := os.MkdirAll(filepath.Join(lxc.conf, "servercerts"), 0o700); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(lxc.conf, "servercerts", "s.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	lxc.must("remote", "add", "s", url, "--protocol", "simplestreams", "--public")
	if out := lxc.must("image", "list", "s:"); !strings.Contains(out, fp[:12]) {
		t.Fatalf("lxc image list s: lacks the split image %s:\n%s", fp[:12], out)
	}

	lxc.must("image", "copy", "s:split/12", "local:", "--alias", "fromstreams")
	code, img := d.imageOf(t, fp)
	if code != http.StatusOK || img.Fingerprint != fp || img.Size != fileSize(t, meta)+fileSize(t, rootfs) {
		t.Fatalf("split image from simplestreams: %d %q size %d", code, img.Fingerprint, img.Size)
	}

	if _, err := os.Stat(filepath.Join(d.dir, "images", fp+".rootfs")); err != nil {
		t.Fatalf("the image was not kept split: %v", err)
	}

	noSpool(t, d)

	// A tampered squashfs (its bytes changed, the documents kept) is refused by its
	// fingerprint: nothing is imported, nothing left behind.
	dropImage(t, d, fp)
	bad := filepath.Join(t.TempDir(), "bad.squashfs")
	data, _ := os.ReadFile(rootfs)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}

	badURL, badPEM := serve(bad)
	body, _ := json.Marshal(map[string]any{"source": map[string]string{"type": "image", "mode": "pull", "protocol": "simplestreams", "server": badURL, "certificate": string(badPEM), "alias": "split/12"}})
	code, env, _ := d.rawH("POST", "/1.0/images", strings.NewReader(string(body)), jsonType)
	if code != http.StatusAccepted {
		t.Fatalf("POST /1.0/images: %d %s", code, env.Error)
	}

	_, env = d.waitOp(env)
	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	if op.StatusCode != api.Failure || !strings.Contains(op.Err, "fingerprint") {
		t.Errorf("pull of a tampered split image: %s %q, want a fingerprint error", op.Status, op.Err)
	}

	if code, _ := d.imageOf(t, fp); code != http.StatusNotFound {
		t.Errorf("tampered split image imported: %d", code)
	}

	noSpool(t, d)
}
