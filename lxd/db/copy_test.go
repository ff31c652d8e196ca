package db

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fillDB writes a bit of everything into db, with a deleted instance so ids have a gap.
func fillDB(t *testing.T, db *DB) {
	t.Helper()

	when := time.Date(2025, 3, 4, 5, 6, 7, 891011, time.UTC)
	write(t, db, func(ctx context.Context, tx *Tx) error {
		steps := []func() error{
			func() error {
				_, err := tx.CreateProject(ctx, Project{Name: "p1", Description: "team's", Config: map[string]string{"features.images": "true"}})
				return err
			},
			func() error {
				_, err := tx.CreateProfile(ctx, Profile{Name: "extra", Config: map[string]string{"limits.cpu": "2"},
					Devices: map[string]map[string]string{"data": {"type": "disk", "path": "/data", "source": "/srv/x"}}})
				return err
			},
			func() error { _, err := tx.CreateImage(ctx, sampleImage(fingerprint("a"))); return err },
			func() error { _, err := tx.CreateImage(ctx, sampleImage(fingerprint("b"))); return err },
			func() error {
				return tx.CreateImageAlias(ctx, "default", "debian", fingerprint("a"), "Debian 12 'bookworm'", "container")
			},
			func() error {
				_, err := tx.CreateInstance(ctx, Instance{Name: "gone", Type: "container", CreatedAt: when})
				return err
			},
			func() error {
				_, err := tx.CreateInstance(ctx, Instance{Name: "c1", Type: "container", Architecture: "x86_64",
					Description: "quote ' and\nnewline", CreatedAt: when, LastUsedAt: when.Add(time.Hour),
					Config:   map[string]string{"volatile.base_image": fingerprint("a"), "limits.memory": "1GiB"},
					Devices:  map[string]map[string]string{"eth0": {"type": "nic", "network": "berthbr0"}},
					Profiles: []string{"default", "extra"}})
				return err
			},
			func() error {
				_, err := tx.CreateInstance(ctx, Instance{Name: "c2", Type: "container", Ephemeral: true, CreatedAt: when})
				return err
			},
			func() error { return tx.DeleteInstance(ctx, "gone") },
			func() error {
				_, err := tx.CreateInstanceSnapshot(ctx, Snapshot{Instance: "c1", Name: "snap0", CreatedAt: when,
					Config: map[string]string{"k": "v"}})
				return err
			},
			func() error {
				_, err := tx.CreateStoragePool(ctx, StoragePool{Name: "default", Driver: "dir", Config: map[string]string{"source": "/x"}})
				return err
			},
			func() error {
				return tx.CreateStorageVolume(ctx, StorageVolume{Pool: "default", Name: "vol1", ContentType: "filesystem",
					Config: map[string]string{"size": "1GiB"}, CreatedAt: when})
			},
			func() error {
				_, err := tx.CreateNetwork(ctx, Network{Name: "berthbr0", Type: "bridge", Config: map[string]string{"ipv4.address": "10.0.0.1/24"}})
				return err
			},
			func() error {
				_, err := tx.CreateCertificate(ctx, Certificate{Fingerprint: "aabb01", Type: "client", Name: "laptop", Certificate: "PEM"})
				return err
			},
			func() error {
				return tx.UpdateNodeConfig(ctx, map[string]string{"core.https_address": "[::]:8443"}, nil)
			},
		}

		for i, step := range steps {
			err := step()
			if err != nil {
				t.Fatalf("fill step %d: %v", i, err)
			}
		}

		return nil
	})
}

// snapshotOf reads the typed view lxd/db gives of everything fillDB wrote.
func snapshotOf(t *testing.T, db *DB) map[string]any {
	t.Helper()

	out := map[string]any{}
	read(t, db, func(ctx context.Context, tx *Tx) error {
		var err error
		get := func(name string, f func() (any, error)) {
			if err != nil {
				return
			}

			var v any
			v, err = f()
			out[name] = v
		}

		get("instances", func() (any, error) { return tx.GetInstances(ctx) })
		get("profiles", func() (any, error) { return tx.GetProfiles(ctx) })
		get("images", func() (any, error) { return tx.GetImages(ctx) })
		get("volumes", func() (any, error) { return tx.GetStorageVolumes(ctx, nil) })
		get("nodeconfig", func() (any, error) { return tx.GetNodeConfig(ctx) })

		return err
	})

	return out
}

func TestCopyInto(t *testing.T) {
	ctx := context.Background()
	src := newTestDB(t)
	fillDB(t, src)
	before := snapshotOf(t, src)

	g := newGateway(t)
	err := CopyInto(ctx, src, g.DB())
	if err != nil {
		t.Fatalf("CopyInto: %v", err)
	}

	dst, err := OpenCluster(ctx, g.DB())
	if err != nil {
		t.Fatal(err)
	}

	if after := snapshotOf(t, src); !reflect.DeepEqual(after, before) {
		t.Fatal("the source changed")
	}

	got := snapshotOf(t, dst)
	for k, v := range before {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s differ:\n copy   %+v\n source %+v", k, got[k], v)
		}
	}

	// AUTOINCREMENT counters came along: the deleted instance's id is not reused.
	var maxID, newID int64
	err = dst.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		err := tx.tx.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'instances'").Scan(&maxID)
		if err != nil {
			return err
		}

		newID, err = tx.CreateInstance(ctx, Instance{Name: "c3", Type: "container"})

		return err
	})
	if err != nil || newID != maxID+1 {
		t.Fatalf("new instance id %d (%v), want %d after the copied sequence", newID, err, maxID+1)
	}
}

func TestCopyIntoDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	src := newTestDB(t)
	fillDB(t, src)

	g := newGateway(t)
	err := CopyInto(ctx, src, g.DB())
	if err != nil {
		t.Fatalf("CopyInto: %v", err)
	}

	err = VerifyCopy(ctx, src, g.DB())
	if err != nil {
		t.Fatalf("VerifyCopy of a good copy: %v", err)
	}

	// One changed value in one row.
	_, err = g.DB().ExecContext(ctx, `UPDATE instances_config SET value = '2GiB' WHERE key = 'limits.memory'`)
	if err != nil {
		t.Fatal(err)
	}

	err = VerifyCopy(ctx, src, g.DB())
	if !errors.Is(err, ErrCopyMismatch) || !strings.Contains(err.Error(), `table "instances_config"`) ||
		!strings.Contains(err.Error(), "checksum") {
		t.Fatalf("VerifyCopy after a changed row = %v, want a checksum mismatch naming instances_config", err)
	}

	_, err = g.DB().ExecContext(ctx, `UPDATE instances_config SET value = '1GiB' WHERE key = 'limits.memory'`)
	if err != nil {
		t.Fatal(err)
	}

	// One missing row.
	_, err = g.DB().ExecContext(ctx, `DELETE FROM certificates`)
	if err != nil {
		t.Fatal(err)
	}

	err = VerifyCopy(ctx, src, g.DB())
	if !errors.Is(err, ErrCopyMismatch) || !strings.Contains(err.Error(), `table "certificates" has 1 rows in the source, 0 in the copy`) {
		t.Fatalf("VerifyCopy after a deleted row = %v, want a count mismatch naming certificates", err)
	}
}
