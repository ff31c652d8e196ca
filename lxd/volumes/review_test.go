package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestSnapshotOfFillName: a volume whose tenant made a top-level ".berth-fill" (the name
// FillVolumeDir copies through) still snapshots and restores on a pool without btrfs:
// moving the copy's entries up renamed that entry onto its own parent and failed, so a
// tenant could stop every snapshot and copy of its volume.
func TestSnapshotOfFillName(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()
	err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "v", Type: "custom"})
	if err != nil {
		t.Fatal(err)
	}

	planted := filepath.Join(volumeDir(poolDir, "v"), ".berth-fill")
	if err := os.MkdirAll(filepath.Join(planted, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(planted, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = s.CreateSnapshot(ctx, "p", "v", api.StorageVolumeSnapshotsPost{Name: "s"})
	if err != nil {
		t.Fatalf("snapshot of a volume holding .berth-fill: %v", err)
	}

	b, err := os.ReadFile(filepath.Join(snapshotDir(poolDir, "v", "s"), ".berth-fill", "f"))
	if err != nil || string(b) != "data" {
		t.Errorf("the snapshot's .berth-fill/f: %q, %v", b, err)
	}

	if err := s.Restore(ctx, "p", "v", "s"); err != nil {
		t.Errorf("restore: %v", err)
	}
}

// TestBackupCount: a volume keeps at most maxBackups exported backups (each a full copy
// of the volume on the host's disk).
func TestBackupCount(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "v", Type: "custom"})
	if err != nil {
		t.Fatal(err)
	}

	for i := range maxBackups {
		err = s.CreateBackup(ctx, "p", "v", fmt.Sprintf("b%d", i), true, "none")
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}

	err = s.CreateBackup(ctx, "p", "v", "one-more", true, "none")
	if err == nil || !strings.Contains(err.Error(), "backups") {
		t.Errorf("backup %d: %v, want refused", maxBackups+1, err)
	}

	// Deleting one makes room again.
	if err := s.DeleteBackup("p", "v", "b0"); err != nil {
		t.Fatal(err)
	}

	if err := s.CreateBackup(ctx, "p", "v", "one-more", true, "none"); err != nil {
		t.Errorf("after deleting one: %v", err)
	}
}
