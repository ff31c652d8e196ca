package db

import (
	"context"
	"testing"
)

func TestHasNetworkACLs(t *testing.T) {
	db := newTestDB(t)
	has := func() bool {
		t.Helper()
		var exist bool
		write(t, db, func(ctx context.Context, tx *Tx) error {
			var err error
			exist, err = tx.HasNetworkACLs(ctx)
			return err
		})

		return exist
	}

	if has() {
		t.Fatal("a new database has network ACLs")
	}

	write(t, db, func(ctx context.Context, tx *Tx) error { return tx.CreateNetworkACL(ctx, NetworkACL{Name: "web"}) })
	if !has() {
		t.Fatal("no network ACL after creating one")
	}

	write(t, db, func(ctx context.Context, tx *Tx) error { return tx.DeleteNetworkACL(ctx, "web") })
	if has() {
		t.Fatal("network ACLs after deleting the only one")
	}
}
