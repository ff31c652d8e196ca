package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestStoragePools(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	want := StoragePool{Name: "default", Driver: "dir", Description: "d", Config: map[string]string{"source": "/var/lib/berth/storage-pools/default"}}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		id, err := tx.CreateStoragePool(ctx, want)
		want.ID = id
		if err != nil {
			return err
		}

		_, err = tx.CreateStoragePool(ctx, StoragePool{Name: "a", Driver: "btrfs"})
		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetStoragePool(ctx, "default")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetStoragePool = %+v, want %+v", *got, want)
		}

		all, err := tx.GetStoragePools(ctx)
		if err != nil {
			return err
		}

		if len(all) != 2 || all[0].Name != "a" || all[0].Config == nil {
			t.Errorf("GetStoragePools = %+v", all)
		}

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateStoragePool(ctx, StoragePool{Name: "default", Driver: "dir"})
		return err
	})
	wantStatus(t, err, http.StatusConflict)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.UpdateStoragePool(ctx, "default", StoragePool{Driver: "ignored", Description: "new", Config: map[string]string{"k": "v"}})
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetStoragePool(ctx, "default")
		if err != nil {
			return err
		}

		if got.Driver != "dir" || got.Description != "new" || !reflect.DeepEqual(got.Config, map[string]string{"k": "v"}) {
			t.Errorf("after update = %+v", got)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteStoragePool(ctx, "default")
	})

	for _, f := range []func(ctx context.Context, tx *Tx) error{
		func(ctx context.Context, tx *Tx) error { _, err := tx.GetStoragePool(ctx, "default"); return err },
		func(ctx context.Context, tx *Tx) error { return tx.UpdateStoragePool(ctx, "default", StoragePool{}) },
		func(ctx context.Context, tx *Tx) error { return tx.DeleteStoragePool(ctx, "default") },
	} {
		wantStatus(t, db.Transaction(ctx, f), http.StatusNotFound)
	}
}
