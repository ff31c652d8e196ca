package db

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The backup's temporary copy is 0600 while it is written, whatever the umask: before,
// VACUUM INTO created it 0644 and only the final chmod made it 0400.
func TestBackupToPrivateWhileWritten(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	var mode os.FileMode
	backupWritten = func(tmp string) {
		fi, err := os.Stat(tmp)
		if err == nil {
			mode = fi.Mode().Perm()
		}
	}
	t.Cleanup(func() { backupWritten = nil })

	out := filepath.Join(dir, "backup.db")
	err = d.BackupTo(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}

	if mode != 0o600 {
		t.Fatalf("the temporary copy was %o while written, want 600", mode)
	}

	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o400 || fi.Size() == 0 {
		t.Fatalf("backup: %v %v", fi, err)
	}
}
