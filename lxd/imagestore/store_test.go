package imagestore

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/storage"
)

// TestEnsureInPoolDoesNotWaitForUnpacks: a launch of an image already in the pool returns
// while another image is being unpacked (the store's lock held); one that is not in the
// pool waits for the lock (the control).
func TestEnsureInPoolDoesNotWaitForUnpacks(t *testing.T) {
	dir := t.TempDir()
	pool, err := storage.Load("dir", filepath.Join(dir, "pool"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	s, err := New(filepath.Join(dir, "images"), nil, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	have, missing := strings.Repeat("a", 64), strings.Repeat("b", 64)
	err = pool.CreateImage(have, func(rootfs string) error { return os.Mkdir(filepath.Join(rootfs, "etc"), 0o755) })
	if err != nil {
		t.Fatal(err)
	}

	err = os.Mkdir(s.MetaDir(have), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	s.mu.Lock() // another image's unpack
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()

	done := make(chan error, 1)
	go func() { done <- s.EnsureInPool(context.Background(), have) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EnsureInPool of an image in the pool waited for the store's lock")
	}

	go func() { done <- s.EnsureInPool(context.Background(), missing) }()
	select {
	case <-done:
		t.Fatal("control: EnsureInPool of a missing image did not wait for the store's lock")
	case <-time.After(200 * time.Millisecond):
	}

	s.mu.Unlock()
	locked = false
	<-done // no tarball: it fails, after the lock
}
