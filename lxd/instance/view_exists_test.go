package instance

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// TestExists: Exists answers as Get does, without the render: nil for an instance there,
// and for one that is not, Get's very 404.
func TestExists(t *testing.T) {
	ctx := context.Background()
	d, dir := stateDB(t)

	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: "here", Type: "container", Config: map[string]string{"volatile.idmap.base": "1000000"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	vw := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": &recordPool{}}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID}).View()

	err = vw.Exists(ctx, "here")
	if err != nil {
		t.Errorf("Exists(here) = %v", err)
	}

	err = vw.Exists(ctx, "ghost")
	_, gerr := vw.Get(ctx, "ghost", false)
	if !api.StatusErrorCheck(err, http.StatusNotFound) || gerr == nil || err.Error() != gerr.Error() {
		t.Errorf("Exists(ghost) = %v, Get's error %v: want the same 404", err, gerr)
	}
}
