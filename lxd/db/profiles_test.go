package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestDefaultProfileSeeded(t *testing.T) {
	db := newTestDB(t)

	read(t, db, func(ctx context.Context, tx *Tx) error {
		p, err := tx.GetProfile(ctx, "default")
		if err != nil {
			return err
		}

		want := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}
		if p.Description != "Default Berth profile" || !reflect.DeepEqual(p.Devices, want) || len(p.Config) != 0 {
			t.Errorf("default profile = %+v", p)
		}

		return nil
	})
}

func TestProfileRoundTripAndUpdate(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	want := Profile{
		Name:        "web",
		Description: "web servers",
		Config:      map[string]string{"limits.memory": "1GiB"},
		Devices:     map[string]map[string]string{"eth0": {"type": "nic", "network": "br0"}},
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		id, err := tx.CreateProfile(ctx, want)
		want.ID = id

		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetProfile(ctx, "web")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetProfile = %+v, want %+v", *got, want)
		}

		all, err := tx.GetProfiles(ctx)
		if err != nil {
			return err
		}

		if len(all) != 2 || all[0].Name != "default" || all[1].Name != "web" {
			t.Errorf("GetProfiles = %+v", all)
		}

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProfile(ctx, Profile{Name: "web"})
		return err
	})
	wantStatus(t, err, http.StatusConflict)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.UpdateProfile(ctx, "web", Profile{Description: "changed", Config: map[string]string{"x": "y"}})
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetProfile(ctx, "web")
		if err != nil {
			return err
		}

		if got.Description != "changed" || !reflect.DeepEqual(got.Config, map[string]string{"x": "y"}) || len(got.Devices) != 0 {
			t.Errorf("after UpdateProfile = %+v", got)
		}

		return nil
	})

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.UpdateProfile(ctx, "nope", Profile{})
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestProfileInUse(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProfile(ctx, Profile{Name: "web"})
		if err != nil {
			return err
		}

		for _, name := range []string{"b", "a"} {
			inst := sampleInstance(name)
			inst.Profiles = []string{"default", "web"}
			_, err := tx.CreateInstance(ctx, inst)
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		usedBy, err := tx.GetProfileUsedBy(ctx, "web")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(usedBy, []string{"a", "b"}) {
			t.Errorf("GetProfileUsedBy = %v", usedBy)
		}

		_, err = tx.GetProfileUsedBy(ctx, "nope")
		wantStatus(t, err, http.StatusNotFound)

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteProfile(ctx, "web")
	})
	wantStatus(t, err, http.StatusConflict)

	if err.Error() != `profile "web" is in use` {
		t.Fatalf("in-use message = %q", err.Error())
	}

	// Renaming follows the id: the instances see the new name.
	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.RenameProfile(ctx, "web", "www")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		inst, err := tx.GetInstance(ctx, "a")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(inst.Profiles, []string{"default", "www"}) {
			t.Errorf("profiles after rename = %v", inst.Profiles)
		}

		return nil
	})

	// Even bypassing the pre-check, the foreign key refuses.
	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, "DELETE FROM profiles WHERE name = 'www'")
		return err
	})
	if err == nil {
		t.Fatal("raw delete of a used profile succeeded; the foreign key is not enforced")
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, name := range []string{"a", "b"} {
			err := tx.DeleteInstance(ctx, name)
			if err != nil {
				return err
			}
		}

		return tx.DeleteProfile(ctx, "www")
	})
}

func TestDefaultProfileProtected(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteProfile(ctx, "default")
	})
	wantStatus(t, err, http.StatusBadRequest)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.RenameProfile(ctx, "default", "other")
	})
	wantStatus(t, err, http.StatusBadRequest)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteProfile(ctx, "nope")
	})
	wantStatus(t, err, http.StatusNotFound)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProfile(ctx, Profile{Name: "p1"})
		return err
	})

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.RenameProfile(ctx, "p1", "default")
	})
	wantStatus(t, err, http.StatusConflict)
}
