package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadPreseed: berthd --preseed refuses a bad file before starting anything, never
// blocks on a FIFO, and starts without a file that is gone once a preseed was applied.
func TestLoadPreseed(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "p.yaml")
	err := os.WriteFile(good, []byte("config:\n  core.https_address: 127.0.0.1:8443\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	pf, err := loadPreseed(dir, good)
	if err != nil || pf == nil || len(pf.sum) != 64 {
		t.Fatalf("good preseed: %+v %v", pf, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("bogus: 1\n"), 0o600)
	fifo := filepath.Join(dir, "fifo")
	_ = syscall.Mkfifo(fifo, 0o600)
	big := filepath.Join(dir, "big.yaml")
	_ = os.WriteFile(big, []byte(strings.Repeat("#\n", 1<<20)), 0o600)
	for path, want := range map[string]string{
		bad:                          `unknown key "bogus"`,
		fifo:                         "is not a regular file",
		big:                          "is larger than",
		filepath.Join(dir, "gone.y"): "no such file",
	} {
		_, err := loadPreseed(dir, path)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", filepath.Base(path), err, want)
		}
	}

	_ = os.WriteFile(filepath.Join(dir, preseedMarker), []byte(pf.sum+"\n"), 0o600)
	pf, err = loadPreseed(dir, filepath.Join(dir, "gone.y"))
	if err != nil || pf != nil {
		t.Errorf("a file gone after a preseed was applied: %+v %v", pf, err)
	}
}
