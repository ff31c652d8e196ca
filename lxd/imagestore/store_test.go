package imagestore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

var testIDs = idmap.Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}

// testStore is a store over a fresh database and an overlay pool (the driver whose
// instances share the image's tree), as a berthd at start opens them.
type testStore struct {
	*Store
	dir  string
	pool storage.Driver
}

func newTestStore(t *testing.T) *testStore {
	t.Helper()
	testutil.RequireRoot(t, "unpack images with their owners")

	dir := t.TempDir()
	poolDir := filepath.Join(dir, "pool")
	if err := os.Mkdir(poolDir, 0o711); err != nil {
		t.Fatal(err)
	}

	if err := storage.ProbeOverlay(poolDir); err != nil {
		testutil.SkipOrFail(t, "overlay pool: %v", err)
	}

	d, err := db.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })

	return reopen(t, &testStore{dir: dir}, d)
}

// reopen opens the store again over the same files, as berthd does after a crash, and
// reconciles.
func reopen(t *testing.T, ts *testStore, d *db.DB) *testStore {
	t.Helper()

	pool, err := storage.Load("overlay", filepath.Join(ts.dir, "pool"), nil)
	if err != nil {
		t.Fatal(err)
	}

	s, err := New(filepath.Join(ts.dir, "images"), d, OnePool{pool}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	err = s.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	return &testStore{Store: s, dir: ts.dir, pool: pool}
}

// imageTarball is a small unified image; different tags make different fingerprints.
func imageTarball(t *testing.T, tag string) []byte {
	t.Helper()

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range []struct{ name, body string }{
		{"metadata.yaml", "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: test\n"},
		{"rootfs/", ""},
		{"rootfs/etc/", ""},
		{"rootfs/etc/hostname", tag + "\n"},
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

	return buf.Bytes()
}

func (ts *testStore) importImage(t *testing.T, data []byte) (string, error) {
	t.Helper()

	up, err := ts.Spool(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	fp, _, err := ts.Import(context.Background(), up, ImportOptions{Filename: "img.tar.gz"})
	return fp, err
}

func (ts *testStore) mustImport(t *testing.T, data []byte) string {
	t.Helper()

	fp, err := ts.importImage(t, data)
	if err != nil {
		t.Fatalf("import: %v", err)
	}

	return fp
}

// assertGone checks that fp has no record, files or trash, and, when pooled is false,
// no pool tree.
func (ts *testStore) assertGone(t *testing.T, fp string, pooled bool) {
	t.Helper()

	_, err := ts.Get(context.Background(), "default", fp)
	if api.StatusCodeOf(err) != http.StatusNotFound {
		t.Errorf("Get of a deleted image: %v", err)
	}

	if got := ts.pool.HasImage(fp); got != pooled {
		t.Errorf("pool has the image: %v, want %v", got, pooled)
	}

	entries, _ := os.ReadDir(filepath.Join(ts.dir, "images"))
	for _, e := range entries {
		t.Errorf("left in the image directory: %s", e.Name())
	}
}

// TestDeleteSparesReimport: a delete is complete for the client when Delete returns (no
// record, no alias), and its slow part never removes the same image imported meanwhile.
func TestDeleteSparesReimport(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	data := imageTarball(t, "a")
	fp := ts.mustImport(t, data)

	err := ts.AddAliases(ctx, "default", fp, "", api.ImageAlias{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}

	finish, err := ts.Delete(ctx, "default", fp)
	if err != nil {
		t.Fatal(err)
	}

	list, _ := ts.List(ctx, "default", nil)
	if len(list) != 0 {
		t.Errorf("listed after Delete returned: %v", list)
	}

	_, err = ts.Alias(ctx, "default", "a")
	if api.StatusCodeOf(err) != http.StatusNotFound {
		t.Errorf("alias after Delete returned: %v", err)
	}

	// Uploaded again before the delete finished: a new image, not a duplicate.
	again, err := ts.importImage(t, data)
	if err != nil || again != fp {
		t.Fatalf("re-import during the delete: %q, %v", again, err)
	}

	finish()

	_, err = ts.Get(ctx, "default", fp)
	if err != nil {
		t.Fatalf("the pending delete removed the image imported after it: %v", err)
	}

	for _, p := range []string{ts.TarballPath(fp), filepath.Join(ts.MetaDir(fp), "metadata.yaml")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("re-imported image lost %s: %v", p, err)
		}
	}

	if !ts.pool.HasImage(fp) {
		t.Error("re-imported image lost its pool tree")
	}

	// And a delete left alone removes everything.
	finish, err = ts.Delete(ctx, "default", fp)
	if err != nil {
		t.Fatal(err)
	}

	finish()
	ts.assertGone(t, fp, false)
}

// TestDeleteCrashSafe kills the daemon (drops the store without the delete's finish)
// between the steps of a delete and of an instance's removal: the next start leaves no
// image nobody uses, and keeps the one an instance still sits on.
func TestDeleteCrashSafe(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	d := ts.db

	used := ts.mustImport(t, imageTarball(t, "used"))
	unused := ts.mustImport(t, imageTarball(t, "unused"))

	err := ts.pool.CreateInstanceFromImage("c1", used, testIDs)
	if err != nil {
		t.Fatal(err)
	}

	for _, fp := range []string{used, unused} {
		_, err := ts.Delete(ctx, "default", fp) // crash: finish never runs
		if err != nil {
			t.Fatal(err)
		}
	}

	ts = reopen(t, ts, d)
	ts.assertGone(t, unused, false)
	ts.assertGone(t, used, true) // released, for c1

	if got, _ := ts.pool.ListImages(); len(got) != 0 {
		t.Errorf("pool lists deleted images: %v", got)
	}

	// The instance goes, and the daemon dies before it prunes the image.
	err = ts.pool.DeleteInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	ts = reopen(t, ts, d)
	ts.assertGone(t, used, false)

	if got, _ := os.ReadDir(filepath.Join(ts.dir, "pool/images")); len(got) != 0 {
		t.Errorf("pool images left: %v", got)
	}
}

// TestDeleteInUse: an image instances were made from can be deleted; its tree stays for
// them until the last goes.
func TestDeleteInUse(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	fp := ts.mustImport(t, imageTarball(t, "b"))

	err := ts.pool.CreateInstanceFromImage("c1", fp, testIDs)
	if err != nil {
		t.Fatal(err)
	}

	finish, err := ts.Delete(ctx, "default", fp)
	if err != nil {
		t.Fatalf("deleting an image in use: %v", err)
	}

	finish()
	ts.assertGone(t, fp, true)

	err = ts.pool.DeleteInstance("c1")
	if err == nil {
		ts.pool.PruneBackupImages() // as the instance manager does after a delete
	}

	if err != nil {
		t.Fatal(err)
	}

	if ts.pool.HasImage(fp) {
		t.Error("image tree stayed after its last instance went")
	}
}

// TestReimportAdoptsReleased: an image deleted while an instance sat on it (its pool tree
// released) and imported again is a recorded image: its tree must be adopted again, not
// pruned when that instance goes (which made a launch racing the prune fail with "image
// not found in pool" and left a recorded image the pool does not list).
func TestReimportAdoptsReleased(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	data := imageTarball(t, "adopt")
	fp := ts.mustImport(t, data)

	err := ts.pool.CreateInstanceFromImage("c1", fp, testIDs)
	if err != nil {
		t.Fatal(err)
	}

	finish, err := ts.Delete(ctx, "default", fp)
	if err != nil {
		t.Fatal(err)
	}

	finish() // released, for c1

	again, err := ts.importImage(t, data)
	if err != nil || again != fp {
		t.Fatalf("re-import: %q, %v", again, err)
	}

	if got, _ := ts.pool.ListImages(); len(got) != 1 || got[0] != fp {
		t.Errorf("pool does not list the re-imported image: %v", got)
	}

	err = ts.pool.DeleteInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	ts.pool.PruneBackupImages() // as the instance manager does after a delete

	if !ts.pool.HasImage(fp) {
		t.Error("the pool tree of a recorded (re-imported) image was pruned")
	}
}

// TestEnsureInPoolDoesNotWaitForUnpacks: a launch of an image already in the pool returns
// while another image is being unpacked (the store's lock held); one that is not in the
// pool waits for the lock (the control).
func TestEnsureInPoolDoesNotWaitForUnpacks(t *testing.T) {
	dir := t.TempDir()
	pool, err := storage.Load("dir", filepath.Join(dir, "pool"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	s, err := New(filepath.Join(dir, "images"), nil, OnePool{pool}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	have, missing := strings.Repeat("a", 64), strings.Repeat("b", 64)
	err = pool.CreateImage(have, func(rootfs string) error { return os.Mkdir(filepath.Join(rootfs, "etc"), 0o755) })
	if err != nil {
		t.Fatal(err)
	}

	err = os.Mkdir(s.MetaDir(have), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	s.mu.Lock() // another image's unpack
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()

	done := make(chan error, 1)
	go func() { done <- s.EnsureInPool(context.Background(), have, pool) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EnsureInPool of an image in the pool waited for the store's lock")
	}

	go func() { done <- s.EnsureInPool(context.Background(), missing, pool) }()
	select {
	case <-done:
		t.Fatal("control: EnsureInPool of a missing image did not wait for the store's lock")
	case <-time.After(200 * time.Millisecond):
	}

	s.mu.Unlock()
	locked = false
	<-done // no tarball: it fails, after the lock
}
