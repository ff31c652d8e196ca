package nsexec

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadConfigHostile: a FIFO is refused at once (not waited on), a sparse file past the
// cap is never read, a file on procfs is refused, a small file is read whole.
func TestReadConfigHostile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "passwd.fifo")
	sparse := filepath.Join(dir, "passwd.sparse")
	small := filepath.Join(dir, "passwd")

	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}

	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}

	_ = f.Truncate(64 << 30)
	_ = f.Close()

	if err := os.WriteFile(small, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{fifo, sparse, "/proc/self/status", dir} {
		start := time.Now()
		_, err := readConfig(p, maxConfigFile, configDeadline)
		if err == nil || time.Since(start) > time.Second {
			t.Errorf("readConfig(%s) = %v after %s, want a prompt refusal", p, err, time.Since(start))
		}
	}

	data, err := readConfig(small, maxConfigFile, configDeadline)
	if err != nil || string(data) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Fatalf("readConfig(small) = %q, %v", data, err)
	}
}
