package storage

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/test/testutil"
)

// TestVolumeDirCopyRemove: a volume directory is made, copied with owners, modes,
// symlinks and hard links kept (a full copy off btrfs), and removed whole; a copy into
// an existing name fails and leaves nothing behind.
func TestVolumeDirCopyRemove(t *testing.T) {
	testutil.RequireRoot(t, "chown")
	parent := t.TempDir()
	src := filepath.Join(parent, "v")
	if err := MakeVolumeDir(src); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o755); err != nil {
		t.Fatal(err)
	}

	// chown clears setuid: owner first.
	for _, step := range []error{
		os.Lchown(filepath.Join(src, "f"), 2147352576+1500, 2147352576+1500),
		os.Chmod(filepath.Join(src, "f"), 0o755|os.ModeSetuid),
		os.Lchown(src, 2147352576, 2147352576),
		os.Chmod(src, 0o755),
		os.Symlink("/etc/passwd", filepath.Join(src, "l")),
		os.Link(filepath.Join(src, "f"), filepath.Join(src, "h")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}

	dst := filepath.Join(parent, "s")
	if err := CopyVolumeDir(context.Background(), src, dst, true); err != nil {
		t.Fatal(err)
	}

	var st, top, h syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dst, "f"), &st); err != nil {
		t.Fatal(err)
	}

	if st.Uid != 2147352576+1500 || st.Mode&syscall.S_ISUID == 0 {
		t.Errorf("copied file: uid %d mode %o", st.Uid, st.Mode)
	}

	if err := syscall.Lstat(dst, &top); err != nil || top.Uid != 2147352576 || top.Mode&0o777 != 0o755 {
		t.Errorf("copied top: uid %d mode %o %v", top.Uid, top.Mode, err)
	}

	if err := syscall.Lstat(filepath.Join(dst, "h"), &h); err != nil || h.Ino != st.Ino {
		t.Errorf("hard link not kept: %v", err)
	}

	if l, err := os.Readlink(filepath.Join(dst, "l")); err != nil || l != "/etc/passwd" {
		t.Errorf("symlink: %q %v", l, err)
	}

	if err := CopyVolumeDir(context.Background(), src, dst, false); err == nil {
		t.Errorf("a copy onto an existing volume worked")
	}

	if m, _ := filepath.Glob(filepath.Join(parent, tmpPrefix+"*")); len(m) != 0 {
		t.Errorf("a failed copy left %v", m)
	}

	for _, p := range []string{src, dst} {
		if err := RemoveVolumeDir(p); err != nil {
			t.Fatal(err)
		}
	}

	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("left after removal: %v", ents)
	}

	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("removal followed the symlink: %v", err)
	}
}
