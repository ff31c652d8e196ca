package db

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkGetInstances100 is what `berth list` costs the database: 100 instances
// with 10 config keys and 2 devices each, read back with everything attached.
func BenchmarkGetInstances100(b *testing.B) {
	db := newBenchDB(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		err := db.ReadTransaction(ctx, func(ctx context.Context, tx *Tx) error {
			insts, err := tx.GetInstances(ctx)
			if err != nil {
				return err
			}

			if len(insts) != 100 || len(insts[99].Config) != 10 || len(insts[99].Devices) != 2 {
				return fmt.Errorf("unexpected result: %d instances", len(insts))
			}

			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetInstanceOf100 is one instance out of 100, as most per-instance
// endpoints do.
func BenchmarkGetInstanceOf100(b *testing.B) {
	db := newBenchDB(b)
	ctx := context.Background()
	for b.Loop() {
		err := db.ReadTransaction(ctx, func(ctx context.Context, tx *Tx) error {
			inst, err := tx.GetInstance(ctx, "c050")
			if err != nil {
				return err
			}

			if len(inst.Config) != 10 || len(inst.Devices) != 2 {
				return fmt.Errorf("unexpected result: %+v", inst)
			}

			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// newBenchDB holds 100 instances with 10 config keys and 2 devices each.
func newBenchDB(b *testing.B) *DB {
	db := newTestDB(b)

	write(b, db, func(ctx context.Context, tx *Tx) error {
		for i := range 100 {
			inst := Instance{
				Name:         fmt.Sprintf("c%03d", i),
				Type:         "container",
				Architecture: "x86_64",
				Config:       map[string]string{},
				Devices: map[string]map[string]string{
					"eth0": {"type": "nic", "network": "berthbr0", "name": "eth0", "hwaddr": "00:16:3e:00:00:00"},
					"data": {"type": "disk", "source": "/srv", "path": "/mnt"},
				},
				Profiles: []string{"default"},
			}
			for k := range 10 {
				inst.Config[fmt.Sprintf("volatile.key%d", k)] = fmt.Sprintf("value-%d-%d", i, k)
			}

			_, err := tx.CreateInstance(ctx, inst)
			if err != nil {
				return err
			}
		}

		return nil
	})

	return db
}

// BenchmarkCreateInstance is one write transaction per instance, fsync included.
func BenchmarkCreateInstance(b *testing.B) {
	db := newTestDB(b)
	ctx := context.Background()
	i := 0

	for b.Loop() {
		i++
		err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
			_, err := tx.CreateInstance(ctx, Instance{
				Name:     fmt.Sprintf("c%d", i),
				Type:     "container",
				Config:   map[string]string{"a": "b", "c": "d"},
				Devices:  map[string]map[string]string{"eth0": {"type": "nic", "network": "br0"}},
				Profiles: []string{"default"},
			})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
