package images

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mkSquashfs builds a squashfs of src with Debian's mksquashfs (squashfs-tools, in
// DEB_PKGS). Metadata is left uncompressed so tests can patch entry names in place.
func mkSquashfs(t *testing.T, src, comp string, pseudo ...string) string {
	t.Helper()

	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Fatalf("mksquashfs (squashfs-tools) is needed: %v", err)
	}

	out := filepath.Join(t.TempDir(), "rootfs.squashfs")
	args := []string{src, out, "-noappend", "-quiet", "-no-progress", "-comp", comp, "-noI", "-noD", "-noF", "-noX", "-no-xattrs"}
	for _, p := range pseudo {
		args = append(args, "-p", p)
	}

	b, err := exec.Command("mksquashfs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}

	return out
}

// patch replaces the only occurrence of old in the file at path with new (same length).
func patch(t *testing.T, path, old, new string) {
	t.Helper()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if bytes.Count(b, []byte(old)) != 1 || len(old) != len(new) {
		t.Fatalf("%q is not in the image exactly once", old)
	}

	err = os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600)
	if err != nil {
		t.Fatal(err)
	}
}

func splitMeta(t *testing.T) string {
	return writeTemp(t, makeTar(t, "xz", file("metadata.yaml", goodMetadata), dir("templates"), file("templates/hostname.tpl", "{{ container.name }}")))
}

func unpackSplit(t *testing.T, sq string) (string, UnpackStats, error) {
	t.Helper()

	root, meta := t.TempDir(), t.TempDir()
	stats, err := (&Unpacker{Log: discardLog()}).UnpackSplit(splitMeta(t), sq, root, meta)
	if err == nil {
		_, serr := os.Stat(filepath.Join(meta, "metadata.yaml"))
		if serr != nil {
			t.Fatalf("metadata.yaml not unpacked: %v", serr)
		}
	}

	return root, stats, err
}

func TestUnpackSplitValid(t *testing.T) {
	for _, comp := range []string{"xz", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			src := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(src, "etc/deep"), 0o755))
			must(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("img\n"), 0o644))
			must(t, os.WriteFile(filepath.Join(src, "etc/deep/big"), bytes.Repeat([]byte("0123456789abcdef"), 200000), 0o600))
			must(t, os.Link(filepath.Join(src, "etc/hostname"), filepath.Join(src, "etc/hostname2")))
			must(t, os.Symlink("hostname", filepath.Join(src, "etc/link")))
			must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o640))

			sq := mkSquashfs(t, src, comp, "owned f 640 1000 1001 echo mine")
			root, stats, err := unpackSplit(t, sq)
			if err != nil {
				t.Fatal(err)
			}

			b, err := os.ReadFile(filepath.Join(root, "etc/deep/big"))
			if err != nil || len(b) != 3200000 || string(b[16:32]) != "0123456789abcdef" {
				t.Fatalf("big file: %d bytes, %v", len(b), err)
			}

			var a, h syscall.Stat_t
			must(t, syscall.Lstat(filepath.Join(root, "etc/hostname"), &a))
			must(t, syscall.Lstat(filepath.Join(root, "etc/hostname2"), &h))
			if a.Ino != h.Ino {
				t.Fatal("hard link was not kept as one inode")
			}

			if tgt, err := os.Readlink(filepath.Join(root, "etc/link")); err != nil || tgt != "hostname" {
				t.Fatalf("symlink: %q %v", tgt, err)
			}

			var o syscall.Stat_t
			must(t, syscall.Lstat(filepath.Join(root, "owned"), &o))
			if o.Uid != 1000 || o.Gid != 1001 || o.Mode&0o7777 != 0o640 {
				t.Fatalf("owned: uid %d gid %d mode %o", o.Uid, o.Gid, o.Mode)
			}

			var f syscall.Stat_t
			must(t, syscall.Lstat(filepath.Join(root, "fifo"), &f))
			if f.Mode&syscall.S_IFMT != syscall.S_IFIFO {
				t.Fatalf("fifo has mode %o", f.Mode)
			}

			if stats.Entries < 8 {
				t.Fatalf("stats: %+v", stats)
			}
		})
	}
}

// A ".." entry name (patched in: mksquashfs never writes one) fails the unpack, and
// nothing is written next to the destination.
func TestUnpackSplitTraversal(t *testing.T) {
	for _, tc := range []struct{ old, new string }{{"zzzzzz", "../esc"}, {"escXpwn", "esc/pwn"}, {"zz", ".."}} {
		t.Run(tc.new, func(t *testing.T) {
			src := t.TempDir()
			must(t, os.WriteFile(filepath.Join(src, tc.old), []byte("pwned"), 0o644))

			sq := mkSquashfs(t, src, "gzip")
			patch(t, sq, tc.old, tc.new)

			root, _, err := unpackSplit(t, sq)
			if err == nil || !strings.Contains(err.Error(), "unsafe") {
				t.Fatalf("hostile name %q: err %v, want an unsafe path error", tc.new, err)
			}

			if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "esc")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("an entry escaped: %v", err)
			}
		})
	}
}

// A symlink to a host path is created as a symlink and never followed: the target
// directory is untouched, as with a tarball.
func TestUnpackSplitSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	src := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(src, "esc")))

	sq := mkSquashfs(t, src, "xz")
	root, _, err := unpackSplit(t, sq)
	if err != nil {
		t.Fatal(err)
	}

	if tgt, err := os.Readlink(filepath.Join(root, "esc")); err != nil || tgt != outside {
		t.Fatalf("symlink: %q %v", tgt, err)
	}

	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("the symlink's target was written to: %v", ents)
	}
}

// Device nodes are skipped (Berth provides /dev); a setuid-root file keeps its bits and
// owner exactly as a tarball's would (the pool's id shift makes it the container's root).
func TestUnpackSplitDeviceAndSetuid(t *testing.T) {
	src := t.TempDir()
	sq := mkSquashfs(t, src, "xz", "mem c 666 0 0 1 1", "sda b 660 0 6 8 0", "suid f 4755 0 0 echo root")

	root, stats, err := unpackSplit(t, sq)
	if err != nil {
		t.Fatal(err)
	}

	if stats.SkippedDevices != 2 {
		t.Fatalf("skipped %d devices, want 2", stats.SkippedDevices)
	}

	for _, n := range []string{"mem", "sda"} {
		if _, err := os.Lstat(filepath.Join(root, n)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("device %s was created: %v", n, err)
		}
	}

	var st syscall.Stat_t
	must(t, syscall.Lstat(filepath.Join(root, "suid"), &st))
	if st.Mode&0o7777 != 0o4755 || st.Uid != 0 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("suid: mode %o uid %d", st.Mode, st.Uid)
	}
}

// A squashfs that expands past the limits (its blocks are shared and sparse: a few KiB
// describe gigabytes) fails with ErrSquashfsLimit.
func TestSquashfsLimits(t *testing.T) {
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(t, err)
	must(t, f.Truncate(64<<20))
	must(t, f.Close())

	for i := range 5 {
		must(t, os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), nil, 0o644))
	}

	sq := mkSquashfs(t, src, "zstd")
	if st, _ := os.Stat(sq); st.Size() > 64<<10 {
		t.Fatalf("the sparse squashfs is %d bytes", st.Size())
	}

	r, err := os.Open(sq)
	must(t, err)
	defer r.Close()

	for _, lim := range []SquashfsLimits{{MaxEntries: 100, MaxBytes: 32 << 20, MaxDepth: 8}, {MaxEntries: 4, MaxBytes: 1 << 30, MaxDepth: 8}} {
		err = SquashfsToTar(r, io.Discard, lim)
		if !errors.Is(err, ErrSquashfsLimit) {
			t.Fatalf("limits %+v: err %v", lim, err)
		}
	}

	err = SquashfsToTar(r, io.Discard, DefaultSquashfsLimits)
	if err != nil {
		t.Fatal(err)
	}
}

// Corrupt images fail cleanly (no panic, no hang), through the helper process.
func TestUnpackSplitCorrupt(t *testing.T) {
	// Compressed tables and data, and many entries, so that corruption lands in them.
	src := t.TempDir()
	for i := range 200 {
		d := filepath.Join(src, "d"+string(rune('a'+i%20)))
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "f"+string(rune('a'+i/20))), bytes.Repeat([]byte{byte(i)}, 100+i*50), 0o644))
	}

	sq := filepath.Join(t.TempDir(), "rootfs.squashfs")
	if out, err := exec.Command("mksquashfs", src, sq, "-noappend", "-quiet", "-no-progress", "-comp", "gzip").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}

	b, err := os.ReadFile(sq)
	must(t, err)

	// Fixed offsets in the superblock and tables, then pseudo-random ones (a fixed seed).
	offs := []int{40, 96, len(b) / 2, len(b) - 40}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 60 {
		offs = append(offs, rng.IntN(len(b)))
	}

	for _, off := range offs {
		c := bytes.Clone(b)
		for i := off; i < off+16 && i < len(c); i++ {
			c[i] ^= 0xa5
		}

		p := filepath.Join(t.TempDir(), "bad.squashfs")
		must(t, os.WriteFile(p, c, 0o600))

		_, _, err := unpackSplit(t, p)
		t.Logf("corrupt at %d: %v", off, err)
	}

	p := filepath.Join(t.TempDir(), "notsquashfs")
	must(t, os.WriteFile(p, []byte("not a squashfs at all"), 0o600))

	_, _, err = unpackSplit(t, p)
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("not a squashfs: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()

	if err != nil {
		t.Fatal(err)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
