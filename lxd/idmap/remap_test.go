package idmap

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func TestCopyRemapped(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces and chown")

	from := Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}
	to := Set{HostUID: 1065536, HostGID: 1065536, Size: 65536}
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(os.MkdirAll(filepath.Join(src, "home/user"), 0o755))
	must(os.Chown(src, 1000000, 1000000))
	must(os.Chown(filepath.Join(src, "home/user"), 1001000, 1001001))
	must(os.WriteFile(filepath.Join(src, "su"), []byte("su"), 0o755))
	must(os.Chown(filepath.Join(src, "su"), 1000000, 1000000))
	must(syscall.Chmod(filepath.Join(src, "su"), 0o4755))
	// An overlayfs whiteout is a 0/0 character device owned by host root.
	must(unix.Mknod(filepath.Join(src, "whiteout"), unix.S_IFCHR|0o600, 0))
	must(unix.Setxattr(filepath.Join(src, "home"), "trusted.overlay.opaque", []byte("y"), 0))

	capv3 := make([]byte, vfsCapSize3)
	binary.LittleEndian.PutUint32(capv3, vfsCapRevision3)
	binary.LittleEndian.PutUint32(capv3[4:], 1<<13) // CAP_NET_RAW
	binary.LittleEndian.PutUint32(capv3[20:], 1000000)
	must(os.WriteFile(filepath.Join(src, "ping"), []byte("ping"), 0o755))
	must(os.Chown(filepath.Join(src, "ping"), 1000000, 1000000))
	must(unix.Setxattr(filepath.Join(src, "ping"), "security.capability", capv3, 0))

	must(CopyRemapped(context.Background(), src, dst, from, to))

	owner := func(rel string) (uint32, uint32, uint32) {
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, rel), &st))
		return st.Uid, st.Gid, st.Mode
	}

	for rel, want := range map[string][2]uint32{".": {1065536, 1065536}, "home/user": {1066536, 1066537}, "su": {1065536, 1065536}, "whiteout": {0, 0}} {
		u, g, _ := owner(rel)
		if u != want[0] || g != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", rel, u, g, want[0], want[1])
		}
	}

	if _, _, mode := owner("su"); mode&unix.S_ISUID == 0 {
		t.Error("setuid bit lost")
	}

	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dst, "ping"), "security.capability", buf)
	must(err)
	if n != vfsCapSize3 || binary.LittleEndian.Uint32(buf[20:]) != 1065536 {
		t.Errorf("capability rootid not moved: % x", buf[:n])
	}

	n, err = unix.Getxattr(filepath.Join(dst, "home"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("overlay xattr not copied: %v", err)
	}

	exact := filepath.Join(t.TempDir(), "exact")
	must(CopyExact(context.Background(), src, exact))
	var st unix.Stat_t
	must(unix.Lstat(filepath.Join(exact, "home/user"), &st))
	if st.Uid != 1001000 || st.Gid != 1001001 {
		t.Errorf("CopyExact changed an owner to %d:%d", st.Uid, st.Gid)
	}
}

func TestUnshift(t *testing.T) {
	s := Set{HostUID: 1000000, HostGID: 2000000, Size: 65536}
	if u, g := s.ContainerOwner(1001000, 2000005); u != 1000 || g != 5 {
		t.Errorf("ContainerOwner = %d:%d", u, g)
	}

	if u, g := s.ContainerOwner(0, 3000000); u != OverflowID || g != OverflowID {
		t.Errorf("ContainerOwner of foreign ids = %d:%d", u, g)
	}

	v2 := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	v3, err := s.shiftCapability(v2)
	if err != nil {
		t.Fatal(err)
	}

	back := s.UnshiftXattr("security.capability", v3)
	if string(back) != string(v2) {
		t.Errorf("capability round trip: % x, want % x", back, v2)
	}

	other, _ := Set{HostUID: 5000000, HostGID: 5000000, Size: 65536}.shiftCapability(v2)
	if s.UnshiftXattr("security.capability", other) != nil {
		t.Error("a capability of another container's root was kept")
	}
}
