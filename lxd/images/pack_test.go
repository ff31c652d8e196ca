package images

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting cap_net_raw (+ep).
func capNetRaw() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|0x1) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)          // permitted: CAP_NET_RAW
	return b
}

func TestPackUnpackRoundTrip(t *testing.T) {
	testutil.RequireRoot(t, "set owners and security xattrs")

	src := t.TempDir()
	srcRootfs := filepath.Join(src, "rootfs")
	srcMeta := filepath.Join(src, "meta")
	mtime := time.Unix(1600000000, 0)

	must := func(err error) {
		t.Helper()

		if err != nil {
			t.Fatal(err)
		}
	}

	must(os.MkdirAll(filepath.Join(srcRootfs, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(srcMeta, "templates"), 0o755))
	must(os.WriteFile(filepath.Join(srcMeta, "metadata.yaml"), []byte(goodMetadata), 0o644))
	must(os.WriteFile(filepath.Join(srcMeta, "templates/hostname.tpl"), []byte("{{ instance.name }}\n"), 0o644))

	ping := filepath.Join(srcRootfs, "usr/bin/ping")
	must(os.WriteFile(ping, bytes.Repeat([]byte("ping"), 100000), 0o755))
	must(unix.Setxattr(ping, "security.capability", capNetRaw(), 0))
	must(unix.Setxattr(ping, "user.berth", []byte("test"), 0))

	sudo := filepath.Join(srcRootfs, "usr/bin/sudo")
	must(os.WriteFile(sudo, []byte("sudo"), 0o755))
	must(unix.Chmod(sudo, 0o4755))

	owned := filepath.Join(srcRootfs, "usr/owned")
	must(os.WriteFile(owned, []byte("x"), 0o640))
	must(os.Lchown(owned, 1000, 1001))

	must(os.Link(sudo, filepath.Join(srcRootfs, "usr/bin/sudoedit")))
	must(os.Symlink("usr/bin", filepath.Join(srcRootfs, "bin")))
	must(os.Lchown(filepath.Join(srcRootfs, "bin"), 5, 6))
	must(unix.Mkfifo(filepath.Join(srcRootfs, "fifo"), 0o600))
	must(unix.Mknod(filepath.Join(srcRootfs, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.WriteFile(filepath.Join(srcRootfs, "usr/big"), bytes.Repeat([]byte("0123456789abcdef"), 3<<16), 0o644)) // streamed, not buffered
	must(os.Chtimes(ping, mtime, mtime))
	must(os.Chtimes(filepath.Join(srcRootfs, "usr/bin"), mtime, mtime))

	var buf bytes.Buffer

	must(Pack(&buf, srcRootfs, srcMeta, "gzip"))

	meta, hasRootfs, err := ReadMetadata(writeTemp(t, buf.Bytes()))
	if err != nil || !hasRootfs || meta.Architecture != "x86_64" {
		t.Fatalf("ReadMetadata of packed image: %+v %v %v", meta, hasRootfs, err)
	}

	rootfs, metaDir, stats, err := unpackInto(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	if stats.SkippedDevices != 1 {
		t.Errorf("SkippedDevices = %d, want 1", stats.SkippedDevices)
	}

	got, err := os.ReadFile(filepath.Join(metaDir, "templates/hostname.tpl"))
	if err != nil || string(got) != "{{ instance.name }}\n" {
		t.Errorf("template = %q, %v", got, err)
	}

	dstPing := filepath.Join(rootfs, "usr/bin/ping")

	val := make([]byte, 64)

	n, err := unix.Getxattr(dstPing, "security.capability", val)
	if err != nil || !bytes.Equal(val[:n], capNetRaw()) {
		t.Errorf("security.capability = %x, %v", val[:max(n, 0)], err)
	}

	n, err = unix.Getxattr(dstPing, "user.berth", val)
	if err != nil || string(val[:n]) != "test" {
		t.Errorf("user.berth = %q, %v", val[:max(n, 0)], err)
	}

	stat := func(p string) unix.Stat_t {
		t.Helper()

		var st unix.Stat_t

		must(unix.Lstat(filepath.Join(rootfs, p), &st))

		return st
	}

	if st := stat("usr/bin/ping"); st.Size != 400000 || st.Mtim.Sec != mtime.Unix() || st.Mode&0o7777 != 0o755 {
		t.Errorf("ping: size %d mtime %d mode %o", st.Size, st.Mtim.Sec, st.Mode&0o7777)
	}

	if st := stat("usr/bin/sudo"); st.Mode&0o7777 != 0o4755 || st.Nlink != 2 || st.Ino != stat("usr/bin/sudoedit").Ino {
		t.Errorf("sudo: mode %o nlink %d", st.Mode&0o7777, st.Nlink)
	}

	if st := stat("usr/big"); st.Size != 3<<20 {
		t.Errorf("big file size = %d", st.Size)
	}

	if st := stat("usr/owned"); st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o640 {
		t.Errorf("owned: %d:%d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}

	if st := stat("bin"); st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != 5 || st.Gid != 6 {
		t.Errorf("bin symlink: mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
	}

	if st := stat("fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}

	if st := stat("usr/bin"); st.Mtim.Sec != mtime.Unix() {
		t.Errorf("usr/bin mtime = %d, want %d", st.Mtim.Sec, mtime.Unix())
	}

	target, err := os.Readlink(filepath.Join(rootfs, "bin"))
	if err != nil || target != "usr/bin" {
		t.Errorf("bin -> %q, %v", target, err)
	}
}

func TestPackCompressions(t *testing.T) {
	src := t.TempDir()

	err := os.WriteFile(filepath.Join(src, "metadata.yaml"), []byte(goodMetadata), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []string{"", "gzip", "zstd", "xz", "none"} {
		var buf bytes.Buffer

		err := Pack(&buf, t.TempDir(), src, c)
		if err != nil {
			t.Fatalf("Pack %q: %v", c, err)
		}

		_, hasRootfs, err := ReadMetadata(writeTemp(t, buf.Bytes()))
		if err != nil || !hasRootfs {
			t.Fatalf("ReadMetadata of %q pack: %v %v", c, hasRootfs, err)
		}
	}

	err = Pack(&bytes.Buffer{}, t.TempDir(), src, "lz4")
	if err == nil {
		t.Fatal("Pack with unknown compression succeeded")
	}
}
