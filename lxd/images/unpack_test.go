package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func unpackInto(t *testing.T, data []byte) (rootfs, meta string, stats UnpackStats, err error) {
	t.Helper()

	base := t.TempDir()
	rootfs = filepath.Join(base, "rootfs")
	meta = filepath.Join(base, "meta")

	for _, d := range []string{rootfs, meta} {
		mkErr := os.Mkdir(d, 0o755)
		if mkErr != nil {
			t.Fatal(mkErr)
		}
	}

	u := &Unpacker{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	stats, err = u.Unpack(writeTemp(t, data), rootfs, meta)

	return rootfs, meta, stats, err
}

// assertEmptyDir fails if anything was written into dir.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	if len(entries) != 0 {
		t.Fatalf("%s was written to: %v", dir, entries)
	}
}

func TestUnpackLayout(t *testing.T) {
	data := makeTar(t, "gzip",
		file("./metadata.yaml", goodMetadata),
		dir("./templates/"),
		file("./templates/hostname.tpl", "{{ instance.name }}"),
		dir("./rootfs/"),
		dir("./rootfs/etc/"),
		file("./rootfs/etc/os-release", "debian"),
		file("./rootfs/usr/bin/tool", "binary"), // parent directories missing from the archive
		symlink("./rootfs/bin", "usr/bin"),
		file("./rootfs/bin/viasymlink", "x"), // resolved inside the root: lands in usr/bin
		hardlink("./rootfs/etc/os-release.hard", "./rootfs/etc/os-release"),
		file("./stray", "ignored"),
	)

	rootfs, meta, stats, err := unpackInto(t, data)
	if err != nil {
		t.Fatal(err)
	}

	for p, want := range map[string]string{
		filepath.Join(meta, "metadata.yaml"):              goodMetadata,
		filepath.Join(meta, "templates/hostname.tpl"):     "{{ instance.name }}",
		filepath.Join(rootfs, "etc/os-release"):           "debian",
		filepath.Join(rootfs, "usr/bin/tool"):             "binary",
		filepath.Join(rootfs, "usr/bin/viasymlink"):       "x",
		filepath.Join(rootfs, "etc/os-release.hard"):      "debian",
		filepath.Join(filepath.Dir(rootfs), "meta/stray"): "",
	} {
		got, err := os.ReadFile(p)
		if want == "" {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s should not exist: %v", p, err)
			}

			continue
		}

		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}

	var a, b unix.Stat_t

	_ = unix.Stat(filepath.Join(rootfs, "etc/os-release"), &a)
	_ = unix.Stat(filepath.Join(rootfs, "etc/os-release.hard"), &b)

	if a.Ino != b.Ino {
		t.Error("hard link was not preserved")
	}

	fi, err := os.Stat(filepath.Join(rootfs, "etc"))
	if err != nil || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("etc mtime = %v, %v", fi.ModTime(), err)
	}

	if stats.SkippedOther != 1 {
		t.Errorf("SkippedOther = %d, want 1 (./stray)", stats.SkippedOther)
	}
}

func TestUnpackHostileSymlinkParent(t *testing.T) {
	outside := t.TempDir()

	// rootfs/etc -> <outside> then rootfs/etc/passwd: <outside> does not exist inside the
	// root, so (like GNU tar) the unpack fails; nothing reaches the host's directory.
	data := makeTar(t, "none",
		dir("rootfs/"),
		symlink("rootfs/etc", outside),
		file("rootfs/etc/passwd", "root::0:0::/:/bin/sh"),
	)

	_, _, _, err := unpackInto(t, data)
	if err == nil {
		t.Fatal("Unpack through a dangling symlink parent succeeded")
	}

	assertEmptyDir(t, outside)

	// Symlinks that resolve inside the root are followed as the container would.
	data = makeTar(t, "none",
		dir("rootfs/"),
		dir("rootfs/tmp/"),
		symlink("rootfs/etc", "/tmp"),
		file("rootfs/etc/passwd", "root::0:0::/:/bin/sh"),
		symlink("rootfs/up", "../../../../../../.."),
		file("rootfs/up/escaped", "x"),
		symlink("rootfs/host", outside),
		dir("rootfs"+outside+"/"),
		file("rootfs/host/planted", "x"),
	)

	rootfs, _, _, err := unpackInto(t, data)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}

	assertEmptyDir(t, outside)

	for _, p := range []string{"tmp/passwd", "escaped", outside + "/planted"} {
		_, err = os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Errorf("%s should be inside rootfs: %v", p, err)
		}
	}
}

func TestUnpackRejectsUnsafePaths(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")

	err := os.WriteFile(victim, []byte("host"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	rel, err := filepath.Rel("/", victim)
	if err != nil {
		t.Fatal(err)
	}

	for name, entries := range map[string][]tarEntry{
		"dotdot":                {dir("rootfs/"), file("rootfs/../../../../../../.."+outside+"/dotdot", "x")},
		"absolute dotdot":       {dir("/rootfs/"), file("/rootfs/../../../../../../.."+outside+"/absolute", "x")},
		"hardlink outside":      {dir("rootfs/"), hardlink("rootfs/h", victim)},
		"hardlink dotdot":       {dir("rootfs/"), hardlink("rootfs/h", "rootfs/../../../../../../../"+rel)},
		"hardlink to metadata":  {file("metadata.yaml", goodMetadata), dir("rootfs/"), hardlink("rootfs/h", "metadata.yaml")},
		"hardlink via symlink":  {dir("rootfs/"), symlink("rootfs/l", outside), hardlink("rootfs/h", "rootfs/l/victim")},
		"root is not directory": {file("rootfs", "x")},
	} {
		t.Run(name, func(t *testing.T) {
			rootfs, _, _, err := unpackInto(t, makeTar(t, "gzip", entries...))
			if err == nil {
				t.Fatal("Unpack succeeded")
			}

			if name != "hardlink via symlink" && !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}

			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Fatalf("outside dir changed: %v", entries)
			}

			var st unix.Stat_t

			_ = unix.Stat(victim, &st)
			if st.Nlink != 1 {
				t.Fatalf("victim gained a hard link")
			}

			_, err = os.Lstat(filepath.Join(rootfs, "h"))
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("hard link was created: %v", err)
			}
		})
	}
}

// TestUnpackAbsoluteNames: absolute member names are common (LXD's own test images have
// them); as GNU tar and LXD do, the leading "/" is dropped, for hard link targets too, and
// what stays inside the destination unpacks. An absolute name outside rootfs/ lands in no
// destination: TestUnpackRejectsUnsafePaths checks "/.." escapes are still refused.
func TestUnpackAbsoluteNames(t *testing.T) {
	outside := t.TempDir()

	rootfs, meta, _, err := unpackInto(t, makeTar(t, "gzip",
		file("/metadata.yaml", goodMetadata),
		dir("/rootfs/"),
		dir("//rootfs/etc/"),
		file("/rootfs/etc/inittab", "id:2:initdefault:"),
		hardlink("/rootfs/etc/inittab.link", "/rootfs/etc/inittab"),
		file(outside+"/planted", "x"),
	))
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}

	got, err := os.ReadFile(filepath.Join(rootfs, "etc/inittab"))
	if err != nil || string(got) != "id:2:initdefault:" {
		t.Errorf("etc/inittab = %q, %v", got, err)
	}

	var st unix.Stat_t

	err = unix.Stat(filepath.Join(rootfs, "etc/inittab.link"), &st)
	if err != nil || st.Nlink != 2 {
		t.Errorf("hard link: nlink %d, %v", st.Nlink, err)
	}

	_, err = os.Stat(filepath.Join(meta, "metadata.yaml"))
	if err != nil {
		t.Errorf("metadata.yaml: %v", err)
	}

	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("an absolute name outside rootfs/ was written on the host: %v", entries)
	}
}

func TestUnpackSkipsDevices(t *testing.T) {
	data := makeTar(t, "gzip",
		dir("rootfs/"),
		dir("rootfs/dev/"),
		tarEntry{hdr: tar.Header{Name: "rootfs/dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		tarEntry{hdr: tar.Header{Name: "rootfs/dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}},
		tarEntry{hdr: tar.Header{Name: "rootfs/dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o640, Uid: os.Geteuid(), Gid: os.Getegid()}},
	)

	rootfs, _, stats, err := unpackInto(t, data)
	if err != nil {
		t.Fatal(err)
	}

	if stats.SkippedDevices != 2 {
		t.Errorf("SkippedDevices = %d, want 2", stats.SkippedDevices)
	}

	_, err = os.Lstat(filepath.Join(rootfs, "dev/null"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("device node was created: %v", err)
	}

	fi, err := os.Lstat(filepath.Join(rootfs, "dev/fifo"))
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o640 {
		t.Errorf("fifo = %v, %v", fi, err)
	}
}

func TestUnpackReplacesEntries(t *testing.T) {
	data := makeTar(t, "none",
		dir("rootfs/"),
		file("rootfs/a", "first"),
		file("rootfs/a", "second"),
		symlink("rootfs/b", "/nowhere"),
		file("rootfs/b", "file now"),
	)

	rootfs, _, _, err := unpackInto(t, data)
	if err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]string{"a": "second", "b": "file now"} {
		got, err := os.ReadFile(filepath.Join(rootfs, name))
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
}
