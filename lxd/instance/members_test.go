package instance

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
)

// recordPool is a pool driver that records what Reconcile asks of it and holds nothing.
type recordPool struct {
	storage.Driver
	mu        sync.Mutex
	unmounted []string
	deleted   []string
}

func (p *recordPool) Mountpoints(string) []string { return nil }

func (p *recordPool) UnmountInstance(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unmounted = append(p.unmounted, name)
	return nil
}

func (p *recordPool) DeleteInstance(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = append(p.deleted, name)
	return nil
}

// In a cluster the database holds every member's instances; this host acts on its own
// only. An instance row of another member (with boot.autostart and a RUNNING last state,
// its directory name present here) is listed and named with its member as location, but
// not reconciled (its last state is not reset to STOPPED, its storage not unmounted),
// not removed as an orphan, not autostarted, not resumed.
func TestOtherMembersInstancesAreNotLocal(t *testing.T) {
	ctx := context.Background()
	d, dir := stateDB(t)

	running := map[string]string{"volatile.last_state.power": "RUNNING", "volatile.idmap.base": "1000000", "boot.autostart": "true"}
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		other, err := tx.ClusterMemberAdd(ctx, db.MemberRow{Name: "m2", Address: "10.251.0.2:8443"})
		if err != nil {
			return err
		}

		local := map[string]string{"volatile.last_state.power": "RUNNING", "volatile.idmap.base": "1065536"}
		_, err = tx.CreateInstance(ctx, db.Instance{Name: "here", Type: "container", Config: local})
		if err != nil {
			return err
		}

		_, err = tx.CreateInstance(ctx, db.Instance{Name: "there", Type: "container", Config: running, MemberID: other})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, n := range []string{"here", "there", "ghost"} {
		err = os.MkdirAll(filepath.Join(dir, "instances", n, "run"), 0o700)
		if err != nil {
			t.Fatal(err)
		}
	}

	// here powered off while the daemon was away: its monitor recorded it.
	err = os.WriteFile(filepath.Join(dir, "instances", "here", "run", "exit.json"), []byte(`{"reason":"poweroff","signal":2}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	pool := &recordPool{}
	m := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": pool}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID})

	all, err := m.View().List(ctx, false)
	if err != nil || len(all) != 2 || all[0].Location != "none" || all[1].Location != "m2" {
		t.Fatalf("List = %+v, %v; want both with their member as location", all, err)
	}

	local, err := m.View().ListLocal(ctx, false)
	if err != nil || len(local) != 1 || local[0].Name != "here" {
		t.Fatalf("ListLocal = %+v, %v; want only here", local, err)
	}

	names, err := m.View().Names(ctx)
	if err != nil || !slices.Equal(names, []string{"here"}) {
		t.Errorf("Names (what Resume takes) = %v, %v; want [here]", names, err)
	}

	err = m.Runner().Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if !slices.Equal(pool.unmounted, []string{"here"}) {
		t.Errorf("Reconcile unmounted %v, want only here", pool.unmounted)
	}

	if !slices.Equal(pool.deleted, []string{"ghost"}) {
		t.Errorf("Reconcile deleted the storage of %v, want only the orphan ghost", pool.deleted)
	}

	for n, want := range map[string]bool{"here": true, "there": true, "ghost": false} {
		_, err := os.Stat(filepath.Join(dir, "instances", n))
		if (err == nil) != want {
			t.Errorf("after Reconcile, instances/%s exists: %v, want %v", n, err == nil, want)
		}
	}

	_ = d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for n, want := range map[string]string{"here": "STOPPED", "there": "RUNNING"} {
			inst, err := tx.GetInstance(ctx, n)
			if err != nil || inst.Config["volatile.last_state.power"] != want {
				t.Errorf("%s's last state after Reconcile = %v, %v; want %s", n, inst.Config["volatile.last_state.power"], err, want)
			}
		}

		return nil
	})

	// "there" has boot.autostart and is not running here: starting it would fail (no
	// image, no storage), so an Autostart that took it returns an error.
	err = m.Runner().Autostart(ctx, func(context.Context) bool { return false })
	if err != nil {
		t.Errorf("Autostart took another member's instance: %v", err)
	}
}
