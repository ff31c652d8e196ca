package instance

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
)

// TestReconcileSettlesMemberMoves: after a crash mid-move, a marked instance directory
// whose row is this member's stays (the marker goes: the move failed on the source, or
// committed on the target); one whose row is another member's (the move committed away
// from here, or failed into here) goes with its storage; an unmarked directory of
// another member's row is left alone as before.
func TestReconcileSettlesMemberMoves(t *testing.T) {
	ctx := context.Background()
	d, dir, _ := moveFixture(t, []string{"stays"}, []string{"went", "elsewhere"})
	var err error
	for _, n := range []string{"stays", "went", "elsewhere", "renamed"} {
		err = os.MkdirAll(filepath.Join(dir, "instances", n), 0o700)
		if err != nil {
			t.Fatal(err)
		}

		if n != "elsewhere" {
			err = markMemberMove(filepath.Join(dir, "instances", n))
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	pool := &recordPool{}
	m := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": pool}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID})
	err = m.Runner().Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for n, want := range map[string]bool{"stays": true, "went": false, "elsewhere": true, "renamed": false} {
		_, err := os.Stat(filepath.Join(dir, "instances", n))
		if (err == nil) != want {
			t.Errorf("after Reconcile, instances/%s exists: %v, want %v", n, err == nil, want)
		}
	}

	if _, err := os.Stat(filepath.Join(dir, "instances", "stays", memberMoveMarker)); err == nil {
		t.Error("the marker of the instance that stayed is still there")
	}

	deleted := slices.Clone(pool.deleted)
	sort.Strings(deleted)
	deleted = slices.Compact(deleted)
	if !slices.Equal(deleted, []string{"renamed", "went"}) {
		t.Errorf("Reconcile deleted the storage of %v, want renamed and went", deleted)
	}
}

// TestMovedConfig: a moved instance keeps what describes it (uuid, base image, MAC
// addresses, templates to apply, its evacuation record, its power state and its own
// settings) and gets this member's id range; what described it on the old host goes.
func TestMovedConfig(t *testing.T) {
	config := map[string]string{
		"volatile.uuid": "u1", "volatile.base_image": "fp", "volatile.eth0.hwaddr": "00:16:3e:00:00:01",
		"volatile.apply_template": "copy", "volatile.evacuate.origin": "m1", "volatile.last_state.power": "RUNNING",
		"volatile.idmap.base": "1000000", "volatile.idmap.next": "[]", "volatile.last_state.idmap": "[]",
		"volatile.eth0.host_name": "veth123", "volatile.eth0.name": "eth0", "limits.cpu": "1", "user.x": "y",
	}

	set, unset := movedConfig(config, idmap.Set{HostUID: 2000000, HostGID: 2000000, Size: 65536})
	sort.Strings(unset)
	if !slices.Equal(unset, []string{"volatile.eth0.host_name", "volatile.eth0.name"}) {
		t.Errorf("unset %v", unset)
	}

	if set["volatile.uuid"] != "u1" || set["volatile.idmap.base"] != "2000000" || set["volatile.base_image"] != "fp" {
		t.Errorf("set %v", set)
	}
}

func (p *recordPool) PruneBackupImages() {}

// moveFixture opens a database in a fresh state directory holding member m2 (its id is
// returned), and stopped containers: local on this member, onM2 on m2.
func moveFixture(t *testing.T, local, onM2 []string) (*db.DB, string, int64) {
	t.Helper()
	ctx := context.Background()
	d, dir := stateDB(t)
	var other int64
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		other, err = tx.ClusterMemberAdd(ctx, db.MemberRow{Name: "m2", Address: "10.251.0.2:8443"})
		if err != nil {
			return err
		}

		cfg := map[string]string{"volatile.idmap.base": "1065536"}
		for _, n := range local {
			_, err = tx.CreateInstance(ctx, db.Instance{Name: n, Type: "container", Config: cfg})
			if err != nil {
				return err
			}
		}

		for _, n := range onM2 {
			_, err = tx.CreateInstance(ctx, db.Instance{Name: n, Type: "container", Config: cfg, MemberID: other})
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	return d, dir, other
}
