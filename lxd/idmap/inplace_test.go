package idmap

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

// TestRemapInPlace: owners move from one range to the other where they lie: directories,
// files, a hard-linked file once (both names see one inode, shifted once), a setuid
// file keeps its bit, a v3 capability its rootid moved, a whiteout (host root) and an
// id outside the range stay; a symlink is chowned itself, and its target outside the
// tree is left as it was.
func TestRemapInPlace(t *testing.T) {
	testutil.RequireRoot(t, "chown")
	from := Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}
	to := Set{HostUID: 1065536, HostGID: 1065536, Size: 65536}
	root := filepath.Join(t.TempDir(), "tree")
	outside := filepath.Join(t.TempDir(), "host-file")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(os.WriteFile(outside, []byte("host"), 0o600))
	must(os.Chown(outside, 1000000, 1000000)) // in from's range: would move if followed
	must(os.MkdirAll(filepath.Join(root, "home/user"), 0o755))
	must(os.Chown(root, 1000000, 1000000))
	must(os.Chown(filepath.Join(root, "home"), 1000000, 1000000))
	must(os.Chown(filepath.Join(root, "home/user"), 1001000, 1001001))
	must(os.WriteFile(filepath.Join(root, "su"), []byte("su"), 0o755))
	must(os.Chown(filepath.Join(root, "su"), 1000000, 1000000))
	must(unix.Chmod(filepath.Join(root, "su"), 0o4755))
	must(os.Link(filepath.Join(root, "su"), filepath.Join(root, "home/su-link")))
	must(unix.Mknod(filepath.Join(root, "whiteout"), unix.S_IFCHR|0o600, 0))
	must(os.WriteFile(filepath.Join(root, "foreign"), nil, 0o644))
	must(os.Chown(filepath.Join(root, "foreign"), 5, 5))
	must(os.Symlink(outside, filepath.Join(root, "escape")))
	must(os.Lchown(filepath.Join(root, "escape"), 1000000, 1000000))

	capv3 := make([]byte, vfsCapSize3)
	binary.LittleEndian.PutUint32(capv3, vfsCapRevision3)
	binary.LittleEndian.PutUint32(capv3[4:], 1<<13)
	binary.LittleEndian.PutUint32(capv3[20:], 1000000)
	must(os.WriteFile(filepath.Join(root, "ping"), []byte("ping"), 0o755))
	must(os.Chown(filepath.Join(root, "ping"), 1000000, 1000000))
	must(unix.Setxattr(filepath.Join(root, "ping"), "security.capability", capv3, 0))

	must(RemapInPlace(context.Background(), root, from, to))

	stat := func(p string) unix.Stat_t {
		var st unix.Stat_t
		must(unix.Lstat(p, &st))
		return st
	}

	for rel, want := range map[string][2]uint32{
		".": {1065536, 1065536}, "home": {1065536, 1065536}, "home/user": {1066536, 1066537},
		"su": {1065536, 1065536}, "home/su-link": {1065536, 1065536}, "whiteout": {0, 0},
		"foreign": {5, 5}, "escape": {1065536, 1065536}, "ping": {1065536, 1065536},
	} {
		st := stat(filepath.Join(root, rel))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", rel, st.Uid, st.Gid, want[0], want[1])
		}
	}

	if st := stat(filepath.Join(root, "su")); st.Mode&0o7777 != 0o4755 {
		t.Errorf("su lost its setuid bit: %o", st.Mode&0o7777)
	}

	if st := stat(outside); st.Uid != 1000000 || st.Gid != 1000000 {
		t.Errorf("the symlink's target outside the tree was chowned: %d:%d", st.Uid, st.Gid)
	}

	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(root, "ping"), "security.capability", buf)
	must(err)
	if n != vfsCapSize3 || binary.LittleEndian.Uint32(buf[20:]) != 1065536 {
		t.Errorf("ping's capability rootid: %d (%d bytes), want 1065536", binary.LittleEndian.Uint32(buf[20:]), n)
	}
}
