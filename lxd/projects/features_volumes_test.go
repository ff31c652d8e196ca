package projects

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

func newService(t *testing.T) (*Service, *db.DB) {
	t.Helper()
	d, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	usage := func(ctx context.Context, tx *db.Tx, proj string) ([]Use, error) { return nil, nil }
	return New(d, usage, func(string, string, map[string]any) {}), d
}

// A new project owns its volumes (as LXD 5.0); a restricted one may not give them up;
// one that owns volumes may not change the feature, be renamed or deleted.
func TestVolumeFeature(t *testing.T) {
	ctx := context.Background()
	s, d := newService(t)

	err := s.Create(ctx, "a", "", nil)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := s.Config(ctx, "a")
	if err != nil || cfg[featureVolumes] != "true" {
		t.Fatalf("new project's %s = %q, %v; want true", featureVolumes, cfg[featureVolumes], err)
	}

	err = s.Create(ctx, "r", "", map[string]string{"restricted": "true", featureVolumes: "false"})
	wantStatus(t, err, http.StatusBadRequest, featureVolumes)

	err = s.Merge(ctx, "a", "", Patch{Config: map[string]string{"restricted": "true", featureVolumes: "false"}})
	wantStatus(t, err, http.StatusBadRequest, featureVolumes)

	err = d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateStoragePool(ctx, db.StoragePool{Name: "p", Driver: "dir"})
		if err == nil {
			err = tx.CreateStorageVolume(ctx, db.StorageVolume{Pool: "p", Name: "vol@a"})
		}

		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	err = s.Merge(ctx, "a", "", Patch{Config: map[string]string{featureVolumes: "false"}})
	wantStatus(t, err, http.StatusBadRequest, "1 storage volumes")
	wantStatus(t, s.Rename(ctx, "a", "b"), http.StatusBadRequest, "storage volumes")
	wantStatus(t, s.Delete(ctx, "a"), http.StatusBadRequest, "storage volumes")

	// Empty again: the feature may change.
	err = d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteStorageVolume(ctx, "p", "vol@a")
	})
	if err == nil {
		err = s.Merge(ctx, "a", "", Patch{Config: map[string]string{featureVolumes: "false"}})
	}

	if err != nil {
		t.Fatalf("turning %s off on an empty project: %v", featureVolumes, err)
	}
}
