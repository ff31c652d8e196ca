package idmap

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func TestCopyShifted(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces and chown")

	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755))
	must(os.Mkdir(filepath.Join(src, "home"), 0o750))
	must(os.Chown(filepath.Join(src, "home"), 1000, 1000))
	must(os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "etc/shadow"), []byte("root:*:1::::::\n"), 0o640))
	must(os.Chown(filepath.Join(src, "etc/shadow"), 0, 42))
	must(os.WriteFile(filepath.Join(src, "usr/bin/su"), []byte("#!su"), 0o755))
	must(syscall.Chmod(filepath.Join(src, "usr/bin/su"), 0o4755))
	must(os.WriteFile(filepath.Join(src, "usr/bin/ping"), []byte("#!ping"), 0o755))
	must(os.Link(filepath.Join(src, "usr/bin/ping"), filepath.Join(src, "usr/bin/ping6")))
	must(os.Symlink("usr/bin", filepath.Join(src, "bin")))
	must(os.Symlink("/nonexistent", filepath.Join(src, "dangling")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(unix.Mknod(filepath.Join(src, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Setxattr(filepath.Join(src, "etc/passwd"), "user.berth", []byte("v"), 0))
	must(os.Chtimes(filepath.Join(src, "etc/passwd"), old, old))

	// cap_net_raw+ep as v2, as in a distribution tarball.
	capV2 := make([]byte, 20)
	binary.LittleEndian.PutUint32(capV2, 0x02000001)
	binary.LittleEndian.PutUint32(capV2[4:], 1<<13)
	must(unix.Setxattr(filepath.Join(src, "usr/bin/ping"), "security.capability", capV2, 0))
	must(os.Chtimes(filepath.Join(src, "etc"), old, old))

	s := Set{HostUID: 1000000, HostGID: 2000000, Size: 65536}
	must(s.CopyShifted(context.Background(), src, dst))

	owner := func(rel string, uid, gid uint32) *syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		must(syscall.Lstat(filepath.Join(dst, rel), &st))
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", rel, st.Uid, st.Gid, uid, gid)
		}

		return &st
	}

	owner(".", 1000000, 2000000)
	owner("etc/passwd", 1000000, 2000000)
	owner("etc/shadow", 1000000, 2000042)
	owner("home", 1001000, 2001000)
	owner("bin", 1000000, 2000000)

	if st := owner("usr/bin/su", 1000000, 2000000); st.Mode&0o7777 != 0o4755 {
		t.Errorf("su mode %o, want 4755", st.Mode&0o7777)
	}

	if st := owner("etc/shadow", 1000000, 2000042); st.Mode&0o777 != 0o640 {
		t.Errorf("shadow mode %o", st.Mode&0o777)
	}

	if st := owner("null", 1000000, 2000000); st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: mode %o rdev %d", st.Mode, st.Rdev)
	}

	if st := owner("fifo", 1000000, 2000000); st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}

	a, b := owner("usr/bin/ping", 1000000, 2000000), owner("usr/bin/ping6", 1000000, 2000000)
	if a.Ino != b.Ino {
		t.Error("hard link ping/ping6 not kept")
	}

	if target, _ := os.Readlink(filepath.Join(dst, "bin")); target != "usr/bin" {
		t.Errorf("bin -> %q", target)
	}

	if target, _ := os.Readlink(filepath.Join(dst, "dangling")); target != "/nonexistent" {
		t.Errorf("dangling -> %q", target)
	}

	data, _ := os.ReadFile(filepath.Join(dst, "etc/passwd"))
	if string(data) != "root:x:0:0::/root:/bin/sh\n" {
		t.Errorf("passwd content %q", data)
	}

	fi, _ := os.Stat(filepath.Join(dst, "etc/passwd"))
	if !fi.ModTime().Equal(old) {
		t.Errorf("passwd mtime %v, want %v", fi.ModTime(), old)
	}

	fi, _ = os.Stat(filepath.Join(dst, "etc"))
	if !fi.ModTime().Equal(old) {
		t.Errorf("etc mtime %v, want %v", fi.ModTime(), old)
	}

	v, err := getXattr(filepath.Join(dst, "etc/passwd"), "user.berth")
	if err != nil || string(v) != "v" {
		t.Errorf("user xattr = %q, %v", v, err)
	}

	c, err := getXattr(filepath.Join(dst, "usr/bin/ping"), "security.capability")
	if err != nil {
		t.Fatal(err)
	}

	if len(c) != 24 || binary.LittleEndian.Uint32(c) != 0x03000001 || binary.LittleEndian.Uint32(c[4:]) != 1<<13 || binary.LittleEndian.Uint32(c[20:]) != 1000000 {
		t.Errorf("capability = %x, want v3 cap_net_raw+ep with rootid 1000000", c)
	}
}

func TestCopyShiftedOutOfRange(t *testing.T) {
	testutil.RequireRoot(t, "create user namespaces and chown")

	src := t.TempDir()
	err := os.WriteFile(filepath.Join(src, "f"), nil, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	err = os.Chown(filepath.Join(src, "f"), 70000, 0)
	if err != nil {
		t.Fatal(err)
	}

	err = Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}.CopyShifted(context.Background(), src, filepath.Join(t.TempDir(), "dst"))
	if err == nil {
		t.Fatal("owner outside the map accepted")
	}
}

func TestShiftACL(t *testing.T) {
	acl := make([]byte, 4+3*8)
	binary.LittleEndian.PutUint32(acl, 2)
	put := func(i int, tag uint16, id uint32) {
		binary.LittleEndian.PutUint16(acl[4+i*8:], tag)
		binary.LittleEndian.PutUint16(acl[4+i*8+2:], 7)
		binary.LittleEndian.PutUint32(acl[4+i*8+4:], id)
	}

	put(0, 0x01, 0xFFFFFFFF) // ACL_USER_OBJ: no id
	put(1, 0x02, 1000)       // ACL_USER
	put(2, 0x08, 4)          // ACL_GROUP

	out, err := Set{HostUID: 100000, HostGID: 200000, Size: 65536}.shiftACL(acl)
	if err != nil {
		t.Fatal(err)
	}

	if got := binary.LittleEndian.Uint32(out[4+4:]); got != 0xFFFFFFFF {
		t.Errorf("USER_OBJ id changed to %d", got)
	}

	if got := binary.LittleEndian.Uint32(out[12+4:]); got != 101000 {
		t.Errorf("user id %d, want 101000", got)
	}

	if got := binary.LittleEndian.Uint32(out[20+4:]); got != 200004 {
		t.Errorf("group id %d, want 200004", got)
	}
}
