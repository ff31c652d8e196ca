package volumes

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// onePool is a Pools with one pool, "p", in a directory of the test.
type onePool struct{ dir string }

func (o onePool) Location(_ context.Context, name string) (string, string, error) {
	if name != "p" {
		return "", "", api.StatusErrorf(404, "storage pool %q not found", name)
	}

	return o.dir, "dir", nil
}

func newService(t *testing.T) (*Service, string) {
	t.Helper()
	testutil.RequireRoot(t, "chown to the volume block")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	state := t.TempDir()
	d, err := db.Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	poolDir := filepath.Join(state, "pool")
	err = d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateStoragePool(ctx, db.StoragePool{Name: "p", Driver: "dir", Config: map[string]string{"source": poolDir}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := os.Mkdir(poolDir, 0o711); err != nil {
		t.Fatal(err)
	}

	s, err := Start(ctx, state, d, onePool{poolDir}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string, string, map[string]any) {})
	if err != nil {
		t.Fatal(err)
	}

	return s, poolDir
}

// TestSettleInterrupted: what a crash leaves is settled by the database at the next start:
// a create whose row was never written is removed, a delete whose row is gone is
// finished, a rename whose row has the new name is finished, and an operation whose row
// says it never happened leaves the volume alone.
func TestSettleInterrupted(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()

	for _, n := range []string{"kept", "deleted", "renamed"} {
		if err := s.Create(ctx, "p", api.StorageVolumesPost{Name: n}); err != nil {
			t.Fatal(err)
		}
	}

	// A create interrupted before its row: the directory and its marker.
	orphan := volumeDir(poolDir, "orphan")
	if err := os.Mkdir(orphan, 0o700); err != nil {
		t.Fatal(err)
	}

	_, err := s.mark(pending{Pool: "p", Volume: "orphan", Remove: []string{orphan}})
	if err != nil {
		t.Fatal(err)
	}

	// A delete interrupted after its row went.
	_, err = s.mark(pending{Pool: "p", Volume: "deleted", Remove: []string{volumeDir(poolDir, "deleted")}})
	if err == nil {
		err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error { return tx.DeleteStorageVolume(ctx, "p", "deleted") })
	}

	if err != nil {
		t.Fatal(err)
	}

	// A rename interrupted after its row changed, before the directory moved.
	_, err = s.mark(pending{Pool: "p", Volume: "renamed2", Old: []string{volumeDir(poolDir, "renamed")}, New: []string{volumeDir(poolDir, "renamed2")}})
	if err == nil {
		err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			return tx.RenameStorageVolume(ctx, "p", "renamed", "renamed2")
		})
	}

	if err != nil {
		t.Fatal(err)
	}

	// A delete interrupted before its row went: nothing happened.
	_, err = s.mark(pending{Pool: "p", Volume: "kept", Remove: []string{volumeDir(poolDir, "kept")}})
	if err != nil {
		t.Fatal(err)
	}

	// A leftover of an interrupted copy.
	if err := os.Mkdir(filepath.Join(poolDir, customDir, ".tmp-copy-x"), 0o700); err != nil {
		t.Fatal(err)
	}

	s.settleAll(ctx)

	for p, want := range map[string]bool{
		"orphan": false, "deleted": false, "renamed": false, "renamed2": true, "kept": true, ".tmp-copy-x": false,
	} {
		if exists(volumeDir(poolDir, p)) != want {
			t.Errorf("%s exists: %v, want %v", p, !want, want)
		}
	}

	if m, _ := filepath.Glob(filepath.Join(s.markerDir(), ".pending-*")); len(m) != 0 {
		t.Errorf("markers left: %v", m)
	}

	list, err := s.List(ctx, "p")
	if err != nil || len(list) != 2 {
		t.Errorf("volumes after settling: %v %v", list, err)
	}
}

// TestDeleteInUse: a volume a profile's disk names is in use: delete and rename are 400s
// naming it, and nothing changes.
func TestDeleteInUse(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()
	if err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "v"}); err != nil {
		t.Fatal(err)
	}

	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateProfile(ctx, db.Profile{Name: "withvol", Config: map[string]string{},
			Devices: map[string]map[string]string{"v": {"type": "disk", "pool": "p", "source": "v", "path": "/data"}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	for what, err := range map[string]error{
		"delete": s.Delete(ctx, "p", "v"),
		"rename": s.Rename(ctx, "p", "v", api.StorageVolumePost{Name: "w"}),
	} {
		if !api.StatusErrorCheck(err, 400) || err == nil || !strings.Contains(err.Error(), "/1.0/profiles/withvol") {
			t.Errorf("%s of a volume in use: %v", what, err)
		}
	}

	if !exists(volumeDir(poolDir, "v")) {
		t.Errorf("the volume's directory went")
	}
}
