package imagestore

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// TestImageInTwoProjects: one fingerprint in the default project and in a project with
// features.images is two records over one set of files; each project sees and deletes
// its own; the files go with the last record. A project without the feature uses the
// default project's images.
func TestImageInTwoProjects(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	err := ts.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateProject(ctx, db.Project{Name: "a", Config: map[string]string{"features.images": "true"}})
		if err != nil {
			return err
		}

		_, err = tx.CreateProject(ctx, db.Project{Name: "b", Config: map[string]string{"features.images": "false"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	data := imageTarball(t, "shared")
	importInto := func(proj string) (string, error) {
		up, err := ts.Spool(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}

		fp, _, err := ts.Import(ctx, up, ImportOptions{Project: proj})
		return fp, err
	}

	fp, err := importInto("a")
	if err != nil {
		t.Fatal(err)
	}

	for _, proj := range []string{"default", "b"} {
		_, err = ts.Get(ctx, proj, fp)
		if api.StatusCodeOf(err) != http.StatusNotFound {
			t.Errorf("a's image seen from %s: %v", proj, err)
		}
	}

	_, err = importInto("a")
	if !errors.Is(err, ErrExists) {
		t.Errorf("second import into a: %v, want ErrExists", err)
	}

	_, err = importInto("b") // b uses default's images: this is default's copy
	if err != nil {
		t.Fatal(err)
	}

	_, err = ts.Get(ctx, "default", fp)
	if err != nil {
		t.Fatalf("image imported from b is not default's: %v", err)
	}

	for _, proj := range []string{"a", "default"} {
		err := ts.AddAliases(ctx, proj, fp, "", api.ImageAlias{Name: "same", Description: proj})
		if err != nil {
			t.Fatalf("alias in %s: %v", proj, err)
		}
	}

	al, err := ts.Alias(ctx, "a", "same")
	if err != nil || al.Description != "a" {
		t.Errorf("a's alias = %+v, %v", al, err)
	}

	finish, err := ts.Delete(ctx, "a", fp)
	if err != nil {
		t.Fatal(err)
	}

	finish()
	if _, err := os.Stat(ts.TarballPath(fp)); err != nil {
		t.Fatalf("a's delete removed the file default's image needs: %v", err)
	}

	if !ts.pool.HasImage(fp) {
		t.Fatal("a's delete removed default's pool tree")
	}

	al, err = ts.Alias(ctx, "default", "same")
	if err != nil || al.Description != "default" {
		t.Errorf("default's alias after a's delete = %+v, %v", al, err)
	}

	finish, err = ts.Delete(ctx, "b", fp) // b's view is default's: the last record
	if err != nil {
		t.Fatal(err)
	}

	finish()
	ts.assertGone(t, fp, false)
}
