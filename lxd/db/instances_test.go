package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func sampleInstance(name string) Instance {
	return Instance{
		Name:         name,
		Type:         "container",
		Architecture: "x86_64",
		Description:  "a test instance",
		Ephemeral:    true,
		CreatedAt:    time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
		Config:       map[string]string{"limits.cpu": "2", "volatile.idmap.base": "1000000"},
		Devices: map[string]map[string]string{
			"eth0": {"type": "nic", "network": "berthbr0", "name": "eth0"},
			"data": {"type": "disk", "source": "/srv", "path": "/mnt"},
			"bare": {"type": "none"},
		},
		Profiles: []string{"default"},
	}
}

func TestInstanceRoundTrip(t *testing.T) {
	db := newTestDB(t)
	want := sampleInstance("c1")

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProfile(ctx, Profile{Name: "extra"})
		if err != nil {
			return err
		}

		want.Profiles = []string{"extra", "default"}
		id, err := tx.CreateInstance(ctx, want)
		want.ID = id
		want.MemberID, want.Location = 1, "none" // a new instance lives on this host

		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetInstance =\n%+v\nwant\n%+v", *got, want)
		}

		exists, err := tx.InstanceExists(ctx, "c1")
		if err != nil || !exists {
			t.Errorf("InstanceExists(c1) = %v, %v", exists, err)
		}

		exists, err = tx.InstanceExists(ctx, "c2")
		if err != nil || exists {
			t.Errorf("InstanceExists(c2) = %v, %v", exists, err)
		}

		return nil
	})
}

func TestInstanceEmptyCollectionsAreNotNil(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, Instance{Name: "bare", Type: "container"})
		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "bare")
		if err != nil {
			return err
		}

		if got.Config == nil || got.Devices == nil || got.Profiles == nil {
			t.Errorf("nil collections in %+v", got)
		}

		return nil
	})
}

func TestGetInstancesSortedWithChildren(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, name := range []string{"zeta", "alpha", "mid"} {
			inst := sampleInstance(name)
			inst.Config = map[string]string{"user.name": name}
			_, err := tx.CreateInstance(ctx, inst)
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		insts, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		var names []string
		for _, inst := range insts {
			names = append(names, inst.Name)
			if inst.Config["user.name"] != inst.Name {
				t.Errorf("instance %q got config %v", inst.Name, inst.Config)
			}

			if len(inst.Devices) != 3 || inst.Devices["eth0"]["network"] != "berthbr0" {
				t.Errorf("instance %q got devices %v", inst.Name, inst.Devices)
			}

			if !reflect.DeepEqual(inst.Profiles, []string{"default"}) {
				t.Errorf("instance %q got profiles %v", inst.Name, inst.Profiles)
			}
		}

		if !reflect.DeepEqual(names, []string{"alpha", "mid", "zeta"}) {
			t.Errorf("GetInstances order = %v", names)
		}

		return nil
	})
}

func TestCreateInstanceErrors(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		return err
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		return err
	})
	wantStatus(t, err, http.StatusConflict)

	if err.Error() != `instance "c1" already exists` {
		t.Fatalf("duplicate message = %q", err.Error())
	}

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		inst := sampleInstance("c2")
		inst.Profiles = []string{"default", "missing"}
		_, err := tx.CreateInstance(ctx, inst)
		return err
	})
	wantStatus(t, err, http.StatusNotFound)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		inst := sampleInstance("c3")
		inst.Profiles = []string{"default", "default"}
		_, err := tx.CreateInstance(ctx, inst)
		return err
	})
	wantStatus(t, err, http.StatusBadRequest)

	// The failed transactions left nothing behind.
	read(t, db, func(ctx context.Context, tx *Tx) error {
		insts, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		if len(insts) != 1 {
			t.Errorf("%d instances after failed creates, want 1", len(insts))
		}

		return nil
	})
}

func TestUpdateInstanceReplaces(t *testing.T) {
	db := newTestDB(t)
	created := sampleInstance("c1")

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProfile(ctx, Profile{Name: "p2"})
		if err != nil {
			return err
		}

		_, err = tx.CreateInstance(ctx, created)
		if err != nil {
			return err
		}

		return tx.UpdateInstance(ctx, "c1", Instance{
			Name:         "ignored",
			Architecture: "aarch64",
			Description:  "new",
			Stateful:     true,
			Config:       map[string]string{"a": "b"},
			Devices:      map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "p"}},
			Profiles:     []string{"p2"},
		})
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		if got.Architecture != "aarch64" || got.Description != "new" || got.Ephemeral || !got.Stateful {
			t.Errorf("row fields not replaced: %+v", got)
		}

		if !got.CreatedAt.Equal(created.CreatedAt) || got.Type != "container" {
			t.Errorf("kept fields changed: %+v", got)
		}

		if !reflect.DeepEqual(got.Config, map[string]string{"a": "b"}) ||
			!reflect.DeepEqual(got.Devices, map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "p"}}) ||
			!reflect.DeepEqual(got.Profiles, []string{"p2"}) {
			t.Errorf("children not replaced: %+v", got)
		}

		return nil
	})

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.UpdateInstance(ctx, "nope", Instance{})
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestUpdateInstanceConfigPartial(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		if err != nil {
			return err
		}

		return tx.UpdateInstanceConfig(ctx, "c1",
			map[string]string{"volatile.last_state.power": "RUNNING", "limits.cpu": "4"},
			[]string{"volatile.idmap.base", "not.there"})
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		want := map[string]string{"volatile.last_state.power": "RUNNING", "limits.cpu": "4"}
		if !reflect.DeepEqual(got.Config, want) {
			t.Errorf("config = %v, want %v", got.Config, want)
		}

		return nil
	})

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.UpdateInstanceConfig(ctx, "nope", map[string]string{"a": "b"}, nil)
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestUpdateInstanceLastUsed(t *testing.T) {
	db := newTestDB(t)
	used := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		if err != nil {
			return err
		}

		return tx.UpdateInstanceLastUsed(ctx, "c1", used)
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		if !got.LastUsedAt.Equal(used) {
			t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
		}

		return nil
	})

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.UpdateInstanceLastUsed(ctx, "nope", used)
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestRenameInstance(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, name := range []string{"a", "b"} {
			_, err := tx.CreateInstance(ctx, sampleInstance(name))
			if err != nil {
				return err
			}
		}

		return tx.RenameInstance(ctx, "a", "c")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstance(ctx, "c")
		if err != nil {
			return err
		}

		if got.Config["limits.cpu"] != "2" || len(got.Devices) != 3 {
			t.Errorf("renamed instance lost its children: %+v", got)
		}

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.RenameInstance(ctx, "c", "b")
	})
	wantStatus(t, err, http.StatusConflict)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.RenameInstance(ctx, "nope", "d")
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestDeleteInstanceCascades(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		if err != nil {
			return err
		}

		return tx.DeleteInstance(ctx, "c1")
	})

	for _, table := range []string{"instances", "instances_config", "instances_devices", "instances_devices_config", "instances_profiles"} {
		var n int
		err := db.read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}

		if n != 0 {
			t.Errorf("%d rows left in %s after delete", n, table)
		}
	}

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.DeleteInstance(ctx, "c1")
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestGetInstanceConfigValues(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for i, name := range []string{"a", "b", "c"} {
			inst := sampleInstance(name)
			inst.Config = map[string]string{}
			if i < 2 {
				inst.Config["volatile.idmap.base"] = name + "-base"
			}

			_, err := tx.CreateInstance(ctx, inst)
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstanceConfigValues(ctx, "volatile.idmap.base")
		if err != nil {
			return err
		}

		want := map[string]string{"a": "a-base", "b": "b-base"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetInstanceConfigValues = %v, want %v", got, want)
		}

		return nil
	})
}
