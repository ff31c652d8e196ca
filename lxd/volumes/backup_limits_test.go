package volumes

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSplitBackupSnapshotCount: a backup's index may not list more snapshots than a
// volume may have (an import would create them all, past maxSnapshots).
func TestSplitBackupSnapshotCount(t *testing.T) {
	names := make([]string, maxSnapshots+1)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}

	index := "name: v\ntype: custom\nsnapshots: [" + strings.Join(names, ", ") + "]\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: indexName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(index))}); err != nil {
		t.Fatal(err)
	}

	_, _ = tw.Write([]byte(index))
	_ = tw.WriteHeader(&tar.Header{Name: "backup/volume/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.Close()
	p := filepath.Join(t.TempDir(), "many.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := splitBackup(p, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "snapshots") {
		t.Errorf("a backup listing %d snapshots: %v, want refused", len(names), err)
	}

	// Positive control: maxSnapshots is fine.
	index = "name: v\ntype: custom\nsnapshots: [" + strings.Join(names[:maxSnapshots], ", ") + "]\n"
	buf.Reset()
	tw = tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: indexName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(index))})
	_, _ = tw.Write([]byte(index))
	_ = tw.WriteHeader(&tar.Header{Name: "backup/volume/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := splitBackup(p, t.TempDir()); err != nil {
		t.Errorf("a backup listing %d snapshots: %v", maxSnapshots, err)
	}
}

// TestSplitBackupFreeSpace: what a backup unpacks is bounded by the free space of the
// filesystem it is unpacked on, not only by maxUnpacked (256 GiB): a few KB of gzip, or a
// sparse member, expands to that on the host's disk, filling it for every tenant.
func TestSplitBackupFreeSpace(t *testing.T) {
	old := freeSpace
	t.Cleanup(func() { freeSpace = old })
	freeSpace = func(string) (int64, error) { return unpackReserve + 30<<20, nil } // budget 10 MiB

	dir := t.TempDir()
	_, err := splitBackup(hostileTar(t, []tar.Header{
		{Name: "backup/volume/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 20 << 20},
	}), dir)
	if err == nil || !strings.Contains(err.Error(), "free space") {
		t.Errorf("20 MiB unpacked with 10 MiB to spare: %v, want refused", err)
	}

	var used int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && fi.Mode().IsRegular() {
			used += fi.Size()
		}

		return nil
	})
	if used > 11<<20 {
		t.Errorf("%d bytes written before refusing", used)
	}

	// Positive control: what fits is split.
	if _, err := splitBackup(hostileTar(t, []tar.Header{
		{Name: "backup/volume/small", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5 << 20},
	}), t.TempDir()); err != nil {
		t.Errorf("5 MiB with 10 MiB to spare: %v", err)
	}
}

// TestSpoolLimit: an uploaded backup is spooled only while unpackReserve stays free.
func TestSpoolLimit(t *testing.T) {
	old := freeSpace
	t.Cleanup(func() { freeSpace = old })
	freeSpace = func(string) (int64, error) { return unpackReserve + 5<<20, nil }
	if n, err := SpoolLimit(t.TempDir()); err != nil || n != 5<<20 {
		t.Errorf("5 MiB beyond the reserve: %d, %v", n, err)
	}

	freeSpace = func(string) (int64, error) { return unpackReserve / 2, nil }
	if _, err := SpoolLimit(t.TempDir()); err == nil {
		t.Errorf("less than the reserve free: accepted")
	}
}
