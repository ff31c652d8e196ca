package db

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// local.db and its WAL are 0600 whatever the umask: a member's own record is root's
// (issue 16 review).
func TestLocalDBMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	conn, err := OpenLocal(context.Background(), dir, true)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_, err = conn.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)`)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{LocalFile, LocalFile + "-wal", LocalFile + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, "database", name))
		if err != nil {
			t.Fatal(err)
		}

		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, fi.Mode().Perm())
		}
	}
}
