package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

func TestSnapshotRows(t *testing.T) {
	db := newTestDB(t)
	inst := sampleInstance("c1")
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Snapshot{
		Instance: "c1", Name: "snap0", Architecture: "x86_64", CreatedAt: created,
		Config: inst.Config, Devices: inst.Devices, Profiles: []string{"default"},
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, inst)
		if err != nil {
			return err
		}

		_, err = tx.CreateInstanceSnapshot(ctx, want)
		if err != nil {
			return err
		}

		later := want
		later.Name, later.CreatedAt = "snap1", created.Add(time.Hour)
		_, err = tx.CreateInstanceSnapshot(ctx, later)
		return err
	})

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstanceSnapshot(ctx, want)
		return err
	})
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Fatalf("duplicate snapshot: %v, want 409", err)
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetInstanceSnapshot(ctx, "c1", "snap0")
		if err != nil {
			return err
		}

		want.ID = got.ID
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("snapshot round trip:\n got %+v\nwant %+v", *got, want)
		}

		err = tx.RenameInstanceSnapshot(ctx, "c1", "snap0", "first")
		if err != nil {
			return err
		}

		list, err := tx.GetInstanceSnapshots(ctx, "c1")
		if err != nil {
			return err
		}

		if len(list) != 2 || list[0].Name != "first" || list[1].Name != "snap1" {
			t.Errorf("list = %+v", list)
		}

		// Another instance's come first in the list of all, by instance name.
		_, err = tx.CreateInstance(ctx, sampleInstance("c0"))
		if err != nil {
			return err
		}

		other := want
		other.Instance, other.Name, other.CreatedAt = "c0", "s", created.Add(2*time.Hour)
		_, err = tx.CreateInstanceSnapshot(ctx, other)
		if err != nil {
			return err
		}

		all, err := tx.GetAllSnapshots(ctx)
		if err != nil {
			return err
		}

		if len(all) != 3 || all[0].Instance != "c0" || !reflect.DeepEqual(all[1:], list) {
			t.Errorf("all snapshots = %+v, want c0's then those of c1 %+v", all, list)
		}

		err = tx.DeleteInstance(ctx, "c0")
		if err != nil {
			return err
		}

		if !api.StatusErrorCheck(tx.RenameInstanceSnapshot(ctx, "c1", "first", "snap1"), http.StatusConflict) {
			t.Error("rename onto an existing snapshot is not a 409")
		}

		return tx.DeleteInstanceSnapshot(ctx, "c1", "first")
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		if !api.StatusErrorCheck(tx.DeleteInstanceSnapshot(ctx, "c1", "first"), http.StatusNotFound) {
			t.Error("deleting a missing snapshot is not a 404")
		}

		// Snapshots go with their instance.
		return tx.DeleteInstance(ctx, "c1")
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		var n int
		err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM instances_snapshots`).Scan(&n)
		if n != 0 {
			t.Errorf("%d snapshot rows left after deleting the instance", n)
		}

		return err
	})
}

// TestSnapshotExpiryUpdate: the expiry is set and cleared on the named snapshot only; a
// missing snapshot is 404.
func TestSnapshotExpiryUpdate(t *testing.T) {
	db := newTestDB(t)
	inst := sampleInstance("c1")
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, inst)
		for _, n := range []string{"a", "b"} {
			if err == nil {
				_, err = tx.CreateInstanceSnapshot(ctx, Snapshot{Instance: "c1", Name: n, CreatedAt: when})
			}
		}

		if err == nil {
			err = tx.UpdateInstanceSnapshotExpiry(ctx, "c1", "a", when)
		}

		return err
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		a, err := tx.GetInstanceSnapshot(ctx, "c1", "a")
		if err != nil {
			return err
		}

		b, err := tx.GetInstanceSnapshot(ctx, "c1", "b")
		if err != nil {
			return err
		}

		if !a.ExpiresAt.Equal(when) || !b.ExpiresAt.IsZero() {
			t.Errorf("expiries a=%v b=%v, want a=%v b=zero", a.ExpiresAt, b.ExpiresAt, when)
		}

		if !api.StatusErrorCheck(tx.UpdateInstanceSnapshotExpiry(ctx, "c1", "none", when), http.StatusNotFound) {
			t.Error("expiry of a missing snapshot: want 404")
		}

		err = tx.UpdateInstanceSnapshotExpiry(ctx, "c1", "a", time.Time{})
		if err != nil {
			return err
		}

		a, err = tx.GetInstanceSnapshot(ctx, "c1", "a")
		if err == nil && !a.ExpiresAt.IsZero() {
			t.Errorf("cleared expiry is %v", a.ExpiresAt)
		}

		return err
	})
}
