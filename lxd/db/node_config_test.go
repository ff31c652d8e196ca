package db

import (
	"context"
	"reflect"
	"testing"
)

func TestNodeConfig(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.UpdateNodeConfig(ctx, map[string]string{"a": "1", "b": "2", "c": "3"}, nil)
		if err != nil {
			return err
		}

		return tx.UpdateNodeConfig(ctx, map[string]string{"a": "10"}, []string{"b", "missing"})
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetNodeConfig(ctx)
		if err != nil {
			return err
		}

		want := map[string]string{"a": "10", "c": "3"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetNodeConfig = %v, want %v", got, want)
		}

		return nil
	})
}
