package imagebuild

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A new build keeps itself and the newest tarball before it of the same image; other
// images' tarballs, lock files and files that only look alike stay.
func TestPruneCacheKeepsTheTwoNewest(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := []struct {
		name string
		age  time.Duration
	}{
		{"debian-12-0000000000000001.tar.gz", 4 * time.Hour},
		{"debian-12-0000000000000002.tar.gz", 3 * time.Hour},
		{"debian-12-0000000000000003.tar.gz", 2 * time.Hour},
		{"debian-12-0000000000000004.tar.gz", 0}, // just built
		{"debian-12-0000000000000001.lock", 4 * time.Hour},
		{"debian-12-slim-0000000000000001.tar.gz", 5 * time.Hour},
		{"debian-13-0000000000000001.tar.gz", 5 * time.Hour},
		{"debian-12-notahash.tar.gz", 5 * time.Hour},
	}

	for _, f := range files {
		p := filepath.Join(dir, f.name)
		err := os.WriteFile(p, nil, 0o644)
		if err == nil {
			err = os.Chtimes(p, now.Add(-f.age), now.Add(-f.age))
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	pruneCache(dir, "debian-12", filepath.Join(dir, "debian-12-0000000000000004.tar.gz"))

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}

	want := []string{
		"debian-12-0000000000000001.lock",
		"debian-12-0000000000000003.tar.gz",
		"debian-12-0000000000000004.tar.gz",
		"debian-12-notahash.tar.gz",
		"debian-12-slim-0000000000000001.tar.gz",
		"debian-13-0000000000000001.tar.gz",
	}

	if !slices.Equal(left, want) {
		t.Errorf("left %v\nwant %v", left, want)
	}
}
