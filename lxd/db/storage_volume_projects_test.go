package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// Two projects' volumes of one name in one pool are two rows, each counted for its own
// project; the default project's keeps its bare name.
func TestStorageVolumesPerProject(t *testing.T) {
	db := newTestDB(t)
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateStoragePool(ctx, StoragePool{Name: "p", Driver: "dir"})
		if err == nil {
			_, err = tx.CreateProject(ctx, Project{Name: "a", Config: map[string]string{featureVolumes: "true"}})
		}

		for _, name := range []string{"vol", "vol@a", "a_vol"} {
			if err == nil {
				err = tx.CreateStorageVolume(ctx, StorageVolume{Pool: "p", Name: name, ContentType: "filesystem"})
			}
		}

		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		for proj, want := range map[string]int64{"default": 2, "a": 1} {
			n, err := tx.CountProjectVolumes(ctx, proj)
			if err != nil || n != want {
				t.Errorf("CountProjectVolumes(%s) = %d, %v; want %d", proj, n, err, want)
			}
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.CreateStorageVolume(ctx, StorageVolume{Pool: "p", Name: "vol@a"})
		wantStatus(t, err, http.StatusConflict)
		err = tx.CreateStorageVolume(ctx, StorageVolume{Pool: "p", Name: "vol@nosuch"})
		wantStatus(t, err, http.StatusNotFound)
		return nil
	})
}

// A project uses its own volumes with the feature, the default project's without, and
// none when it is restricted without it: fail closed, whatever its config.
func TestVolumeOwner(t *testing.T) {
	cases := []struct {
		proj string
		cfg  map[string]string
		want string
		code int
	}{
		{"default", nil, "default", 0},
		{"a", map[string]string{featureVolumes: "true"}, "a", 0},
		{"a", map[string]string{featureVolumes: "false"}, "default", 0},
		{"a", map[string]string{}, "default", 0},
		{"a", map[string]string{featureVolumes: "true", restrictedKey: "true"}, "a", 0},
		{"a", map[string]string{featureVolumes: "false", restrictedKey: "true"}, "", http.StatusForbidden},
		{"a", map[string]string{restrictedKey: "true"}, "", http.StatusForbidden},
		// Every spelling the config accepts counts, as it does for the API's scope
		// checks (validate.IsTrue): "restricted=yes" is restricted here too.
		{"a", map[string]string{featureVolumes: "True", restrictedKey: "True"}, "a", 0},
		{"a", map[string]string{featureVolumes: "1"}, "a", 0},
		{"a", map[string]string{featureVolumes: "off", restrictedKey: "yes"}, "", http.StatusForbidden},
		{"a", map[string]string{restrictedKey: "1"}, "", http.StatusForbidden},
		{"a", map[string]string{restrictedKey: "ON"}, "", http.StatusForbidden},
	}

	for _, c := range cases {
		got, err := VolumeOwner(c.proj, c.cfg)
		if c.code != 0 {
			wantStatus(t, err, c.code)
			continue
		}

		if err != nil || got != c.want {
			t.Errorf("VolumeOwner(%s, %v) = %q, %v; want %q", c.proj, c.cfg, got, err, c.want)
		}
	}
}

// updateFromV9 gives every existing volume to the default project under its own name.
func TestUpdateVolumeProjectsKeepsVolumesInDefault(t *testing.T) {
	ctx := context.Background()
	raw := openRaw(t)

	at := -1
	for i, u := range updates {
		if reflect.ValueOf(u).Pointer() == reflect.ValueOf(schema.Update(updateFromV9)).Pointer() {
			at = i
		}
	}

	if at < 0 {
		t.Fatal("updateFromV9 is not in updates")
	}

	_, err := schema.Ensure(ctx, raw, updates[:at])
	if err != nil {
		t.Fatal(err)
	}

	_, err = raw.ExecContext(ctx, `INSERT INTO storage_pools (name, driver) VALUES ('p', 'dir')`)
	if err == nil {
		_, err = raw.ExecContext(ctx, `INSERT INTO storage_volumes (storage_pool_id, name) VALUES (1, 'data_1')`)
	}

	if err != nil {
		t.Fatal(err)
	}

	_, err = schema.Ensure(ctx, raw, updates[:at+1])
	if err != nil {
		t.Fatal(err)
	}

	var proj string
	err = raw.QueryRowContext(ctx, `SELECT p.name FROM storage_volumes v JOIN projects p ON p.id = v.project_id WHERE v.name = 'data_1'`).Scan(&proj)
	if err != nil || proj != "default" {
		t.Fatalf("project of data_1 = %q, %v; want default", proj, err)
	}
}
