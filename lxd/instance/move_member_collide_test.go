package instance

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// TestMoveInDoesNotWipeAnotherInstance: an arriving instance clears the leftovers of an
// earlier failed arrival under its new name before it is filled. If an instance of that
// name was made on this member after the move was accepted (the target's check and the
// arrival are a round trip, or more, apart), that instance is not leftovers: the arrival
// is a 409 and the instance's files and storage stay untouched. Also for a forged or
// replayed arrival of an instance whose row already names this member.
func TestMoveInDoesNotWipeAnotherInstance(t *testing.T) {
	ctx := context.Background()
	// web: made here while c1's move as web was under way; here: already this member's.
	d, dir, other := moveFixture(t, []string{"web", "here"}, []string{"c1"})
	cfg := map[string]string{"volatile.idmap.base": "1065536"}
	var err error
	for _, n := range []string{"web", "here"} {
		err = os.MkdirAll(filepath.Join(dir, "instances", n), 0o700)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "instances", n, "backup.yaml"), []byte("mine\n"), 0o600)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	pool := &recordPool{}
	m := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": pool}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID,
		IDs: IDRange{UIDStart: 1000000, UIDCount: 1 << 24, GIDStart: 1000000, GIDCount: 1 << 24}})
	fill := func(context.Context, idmap.Set, string, string, string) error {
		return api.StatusErrorf(http.StatusBadRequest, "not filled")
	}

	arrive := func(name string, mv MemberMove) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = api.StatusErrorf(http.StatusInternalServerError, "went on to make the storage: %v", p)
			}
		}()

		return m.Creator().CreateFromTrees(ctx, Incoming{
			Instance: db.Instance{Name: name, Architecture: "x86_64", Config: cfg, Devices: map[string]map[string]string{}},
			Identity: KeepIdentity, Source: "cluster move", FillAs: fill, Move: &mv,
		})
	}

	for _, c := range []struct {
		name string
		mv   MemberMove
	}{
		{"web", MemberMove{Name: "c1", From: other}},    // c1 renamed web while moving here
		{"here", MemberMove{Name: "here", From: other}}, // the row is this member's already
	} {
		err := arrive(c.name, c.mv)
		if !api.StatusErrorCheck(err, http.StatusConflict) {
			t.Errorf("arrival of %s as %s: %v, want a 409", c.mv.Name, c.name, err)
		}

		data, rerr := os.ReadFile(filepath.Join(dir, "instances", c.name, "backup.yaml"))
		if rerr != nil || string(data) != "mine\n" {
			t.Errorf("the arrival as %s removed that instance's files: %v", c.name, rerr)
		}
	}

	if slices.Contains(pool.deleted, "web") || slices.Contains(pool.deleted, "here") {
		t.Errorf("the arrivals deleted the storage of %v", pool.deleted)
	}

	// Positive control: under a free name the arrival clears leftovers and goes on (to
	// this fake pool's end).
	err = arrive("fresh", MemberMove{Name: "c1", From: other})
	if api.StatusErrorCheck(err, http.StatusConflict) || !slices.Contains(pool.deleted, "fresh") {
		t.Errorf("arrival of c1 as fresh: %v, storage deleted %v", err, pool.deleted)
	}
}
