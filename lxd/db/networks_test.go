package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestNetworks(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	want := Network{Name: "berthbr0", Type: "bridge", Description: "d", Config: map[string]string{"ipv4.address": "10.0.0.1/24"}}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		id, err := tx.CreateNetwork(ctx, want)
		want.ID = id

		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetNetwork(ctx, "berthbr0")
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetNetwork = %+v, want %+v", *got, want)
		}

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateNetwork(ctx, Network{Name: "berthbr0", Type: "bridge"})
		return err
	})
	wantStatus(t, err, http.StatusConflict)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.UpdateNetwork(ctx, "berthbr0", Network{Type: "ignored", Config: map[string]string{"ipv4.nat": "true"}})
		if err != nil {
			return err
		}

		return tx.RenameNetwork(ctx, "berthbr0", "br1")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		if len(all) != 1 || all[0].Name != "br1" || all[0].Type != "bridge" || all[0].Description != "" ||
			!reflect.DeepEqual(all[0].Config, map[string]string{"ipv4.nat": "true"}) {
			t.Errorf("GetNetworks = %+v", all)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteNetwork(ctx, "br1")
	})

	for _, f := range []func(ctx context.Context, tx *Tx) error{
		func(ctx context.Context, tx *Tx) error { _, err := tx.GetNetwork(ctx, "br1"); return err },
		func(ctx context.Context, tx *Tx) error { return tx.UpdateNetwork(ctx, "br1", Network{}) },
		func(ctx context.Context, tx *Tx) error { return tx.RenameNetwork(ctx, "br1", "br2") },
		func(ctx context.Context, tx *Tx) error { return tx.DeleteNetwork(ctx, "br1") },
	} {
		wantStatus(t, db.Transaction(ctx, f), http.StatusNotFound)
	}
}
