package instance

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestScratchEmptiedAtStart: a temporary directory a killed daemon left in the scratch
// directory (a received tree's metadata) is gone once the next daemon's Manager exists,
// and the scratch directory is there, private, for the next one.
func TestScratchEmptiedAtStart(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, "tmp", "tree-meta-123")
	err := os.MkdirAll(left, 0o700)
	if err == nil {
		err = os.WriteFile(filepath.Join(left, "metadata.yaml"), []byte("x"), 0o600)
	}

	if err != nil {
		t.Fatal(err)
	}

	m := NewManager(Config{Dir: dir, Pools: fakePools{}, Log: slog.New(slog.DiscardHandler)})

	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("%s survived the start: %v", left, err)
	}

	fi, err := os.Stat(m.scratchDir())
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("scratch directory %s: %v, %v", m.scratchDir(), fi, err)
	}
}
