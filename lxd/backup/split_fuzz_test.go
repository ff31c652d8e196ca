package backup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/tarsafe"
	"github.com/berth-dev/berth/test/testutil"
)

// Bounds of the backup fuzz targets: a run must stay small and quick.
const (
	fuzzMaxBackup = 256 << 10
	fuzzMaxTime   = 10 * time.Second
)

// FuzzBackupMember checks the mapping of backup member names: whatever it keeps is a
// safe relative name inside its tree's image layout, and only the instance or a snapshot
// the index lists gets a tree.
func FuzzBackupMember(f *testing.F) {
	for _, s := range []string{"backup/container/rootfs/etc/passwd", "backup/snapshots/s1/rootfs/x", "backup/snapshots/s2/rootfs/x", "backup/container/../../x", "/backup/container/rootfs", "./backup//container/./metadata.yaml", "backup/index.yaml", "backup/container/rootfs/a\x00b"} {
		f.Add(s)
	}

	snaps := map[string]bool{"s1": true}

	f.Fuzz(func(t *testing.T, name string) {
		if len(name) > 1<<16 {
			return
		}

		tree, rel, err := backupMember(name, snaps)
		if _, unsafe := tarsafe.Split(name); unsafe != nil && !errors.Is(err, tarsafe.ErrUnsafe) {
			t.Fatalf("backupMember(%q) = %v: tarsafe refuses the name (%v)", name, err, unsafe)
		}

		if err != nil || rel == "" {
			if tree != "" || rel != "" {
				t.Fatalf("backupMember(%q) = %q, %q, %v: refused or skipped, but named a tree", name, tree, rel, err)
			}

			return
		}

		if tree != "" && !snaps[tree] {
			t.Fatalf("backupMember(%q): tree %q is not a listed snapshot", name, tree)
		}

		comps, err := tarsafe.Split(rel)
		if err != nil || len(comps) == 0 || strings.Join(comps, "/") != rel {
			t.Fatalf("backupMember(%q) = %q, unsafe or not clean (%v)", name, rel, err)
		}

		if tree != "" && comps[0] != "rootfs" {
			t.Fatalf("backupMember(%q) = snapshot %q member %q outside rootfs/", name, tree, rel)
		}
	})
}

// FuzzSplitBackup feeds plain tarballs to splitBackup (index.yaml decoding and the split
// into one image-layout tarball per tree) and checks: no panic and a bounded time; on
// success, trees only for the instance and listed snapshots, files only in the work
// directory, every member of every tree safe and inside its layout, hard links inside
// their own tree, and no more data out than the backup declares.
func FuzzSplitBackup(f *testing.F) {
	for _, b := range fuzzBackupSeeds() {
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxBackup || len(data) < 262 || string(data[257:262]) != "ustar" {
			return // plain tarballs only: see lxd/images FuzzUnpack
		}

		base := t.TempDir()
		file, work := filepath.Join(base, "backup.tar"), filepath.Join(base, "work")
		err := os.WriteFile(file, data, 0o600)
		if err == nil {
			err = os.Mkdir(work, 0o700)
		}

		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		index, trees, err := splitBackup(file, work)
		if d := time.Since(start); d > fuzzMaxTime {
			t.Fatalf("splitBackup took %v", d)
		}

		if err != nil {
			return
		}

		listed := map[string]bool{"": true}
		for _, s := range index.Snapshots {
			listed[s] = true
		}

		names, _ := os.ReadDir(work)
		if len(names) != len(trees) {
			t.Fatalf("work directory holds %d files for %d trees", len(names), len(trees))
		}

		var out int64
		for tree, p := range trees {
			if !listed[tree] {
				t.Fatalf("tree %q is not in the index", tree)
			}

			if filepath.Dir(p) != work {
				t.Fatalf("tree %q written to %s, outside %s", tree, p, work)
			}

			out += checkTree(t, tree, p)
		}

		if in := testutil.TarDeclared(data); out > in {
			t.Fatalf("split wrote %d bytes of members, the backup declares %d", out, in)
		}
	})
}

// checkTree checks one split tree's members and returns the size of their data.
func checkTree(t *testing.T, tree, p string) int64 {
	t.Helper()

	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()

	var n int64

	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}

		if err != nil {
			t.Fatalf("tree %q: split output unreadable: %v", tree, err)
		}

		n += hdr.Size

		comps, err := tarsafe.Split(hdr.Name)
		if err != nil || len(comps) == 0 {
			t.Fatalf("tree %q: member %q is unsafe (%v)", tree, hdr.Name, err)
		}

		top := comps[0]
		if top != "rootfs" && (tree != "" || (top != "templates" && top != "metadata.yaml")) {
			t.Fatalf("tree %q: member %q is outside the image layout", tree, hdr.Name)
		}

		if hdr.Typeflag == tar.TypeLink {
			lc, err := tarsafe.Split(hdr.Linkname)
			if err != nil || len(lc) == 0 {
				t.Fatalf("tree %q: hard link %q -> %q is unsafe (%v)", tree, hdr.Name, hdr.Linkname, err)
			}
		}
	}
}

const fuzzIndex = `name: c1
backend: dir
pool: default
snapshots: [s1]
config:
  container:
    name: c1
    architecture: x86_64
    config: {limits.memory: 1GiB}
    devices: {root: {type: disk, path: /, pool: default}}
  snapshots:
    - name: s1
`

// fuzzBackupSeeds are small backups, well-formed and hostile.
func fuzzBackupSeeds() [][]byte {
	type m struct {
		name, link, body string
		typ              byte
	}

	build := func(members ...m) []byte {
		var buf bytes.Buffer

		tw := tar.NewWriter(&buf)
		for _, e := range members {
			typ := e.typ
			if typ == 0 {
				typ = tar.TypeReg
			}

			err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Format: tar.FormatPAX})
			if err == nil {
				_, err = tw.Write([]byte(e.body))
			}

			if err != nil {
				panic(err)
			}
		}

		_ = tw.Close()
		return buf.Bytes()
	}

	index := m{name: "backup/index.yaml", body: fuzzIndex}

	return [][]byte{
		build(index, m{name: "backup/container/rootfs/", typ: tar.TypeDir}, m{name: "backup/container/rootfs/etc/hostname", body: "c1"},
			m{name: "backup/container/metadata.yaml", body: "architecture: x86_64\n"}, m{name: "backup/snapshots/s1/rootfs/x", body: "old"}),
		build(index, m{name: "backup/container/rootfs/../../../../etc/cron.d/x", body: "pwned"}),
		build(index, m{name: "backup/container/rootfs/h", link: "backup/snapshots/s1/rootfs/x", typ: tar.TypeLink}),
		build(index, m{name: "backup/container/rootfs/h", link: "/etc/shadow", typ: tar.TypeLink}),
		build(index, m{name: "backup/snapshots/unlisted/rootfs/x", body: "x"}, m{name: "backup/snapshots/s1/metadata.yaml", body: "x"}),
		build(m{name: "backup/index.yaml", body: "snapshots: [../../x, s1, s1]\n"}),
		build(m{name: "backup/index.yaml", body: "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"}),
		build(m{name: "backup/container/rootfs/x", body: "index must come first"}, index),
	}
}
