package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cluster/gateway"
)

// BenchmarkWriteBackends creates and deletes an instance record per iteration (two
// write transactions) on a SQLite file, a single-node dqlite, and through a follower
// of a 3-node dqlite cluster on loopback.
func BenchmarkWriteBackends(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"file", func(b *testing.B) *DB { db, err := Open(context.Background(), b.TempDir()); must(b, err); return db }},
		{"dqlite-1", func(b *testing.B) *DB { return newClusterTestDB(b) }},
		{"dqlite-3-follower", func(b *testing.B) *DB { return threeNodeFollowerDB(b) }},
	}

	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			db := be.open(b)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				name := fmt.Sprintf("c%d", i)
				i++
				err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
					_, err := tx.CreateInstance(ctx, Instance{Name: name, Type: "container", Profiles: []string{"default"},
						Config: map[string]string{"limits.cpu": "1"}})
					return err
				})
				must(b, err)

				err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return tx.DeleteInstance(ctx, name) })
				must(b, err)
			}
		})
	}
}

func must(b testing.TB, err error) {
	b.Helper()

	if err != nil {
		b.Fatal(err)
	}
}

// threeNodeFollowerDB starts three nodes and opens the inventory through a follower.
func threeNodeFollowerDB(b testing.TB) *DB {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := gateway.Bootstrap(ctx, nodeConfig(b))
	must(b, err)

	gws := []*gateway.Gateway{first}
	b.Cleanup(func() {
		for _, g := range gws {
			_ = g.Close()
		}
	})

	for range 2 {
		g, err := gateway.Join(ctx, nodeConfig(b), []string{first.Address()})
		must(b, err)

		gws = append(gws, g)
	}

	waitForVoters(b, first, 3)

	leader, err := first.Leader(ctx)
	must(b, err)

	for _, g := range gws {
		if g.Address() != leader {
			db, err := OpenCluster(ctx, g.DB(), WithTransient(gateway.IsTransient))
			must(b, err)

			return db
		}
	}

	b.Fatal("no follower")

	return nil
}
