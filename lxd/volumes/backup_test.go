package volumes

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/images"
)

// hostileTar writes a volume backup whose index lists s1, then the members given.
func hostileTar(t *testing.T, members []tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	index := "name: v\ntype: custom\nsnapshots: [s1]\n"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(tw.WriteHeader(&tar.Header{Name: indexName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(index))}))
	_, err := tw.Write([]byte(index))
	must(err)
	for i := range members {
		h := members[i]
		must(tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			_, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			must(err)
		}
	}

	must(tw.Close())
	p := filepath.Join(t.TempDir(), "b.tar")
	must(os.WriteFile(p, buf.Bytes(), 0o600))
	return p
}

// TestSplitBackupHostile: names that escape, hard links across trees or out of the
// layout, and an index that is not first are refused; the layout's members are split
// into per-tree image tarballs and the rest is ignored.
func TestSplitBackupHostile(t *testing.T) {
	bad := map[string][]tar.Header{
		"dotdot":          {{Name: "backup/volume/../../../etc/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"link other tree": {{Name: "backup/volume/h", Typeflag: tar.TypeLink, Linkname: "backup/volume-snapshots/s1/f"}},
		"link outside":    {{Name: "backup/volume/h", Typeflag: tar.TypeLink, Linkname: "etc/passwd"}},
		"link dotdot":     {{Name: "backup/volume/h", Typeflag: tar.TypeLink, Linkname: "backup/volume/../../etc/passwd"}},
	}
	for name, members := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := splitBackup(hostileTar(t, members), t.TempDir())
			if err == nil {
				t.Errorf("accepted")
			}
		})
	}

	// The index must come first.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "backup/volume/f", Typeflag: tar.TypeReg, Mode: 0o644})
	_ = tw.Close()
	p := filepath.Join(t.TempDir(), "noindex.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := splitBackup(p, t.TempDir()); err == nil || !strings.Contains(err.Error(), indexName) {
		t.Errorf("a backup without its index first: %v", err)
	}

	sp, err := splitBackup(hostileTar(t, []tar.Header{
		{Name: "backup/volume/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 0, Gid: 0},
		{Name: "backup/volume/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, Uid: 1500},
		{Name: "backup/volume/h", Typeflag: tar.TypeLink, Linkname: "backup/volume/f"},
		{Name: "backup/volume-snapshots/s1/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "backup/volume-snapshots/s9/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "elsewhere/f", Typeflag: tar.TypeReg, Mode: 0o644},
	}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	if len(sp.trees) != 2 || sp.trees[""] == "" || sp.trees["s1"] == "" {
		t.Errorf("trees: %v", sp.trees)
	}

	if top := sp.tops[""]; top.mode != 0o750 {
		t.Errorf("top of the volume: %+v", top)
	}
}

// TestSplitBackupEmptyVolume: an empty volume's export is its top directory only; that
// is still the volume's tree (and an empty snapshot's), and it unpacks to an empty dir.
func TestSplitBackupEmptyVolume(t *testing.T) {
	sp, err := splitBackup(hostileTar(t, []tar.Header{
		{Name: "backup/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "backup/volume/", Typeflag: tar.TypeDir, Mode: 0o711},
		{Name: "backup/volume-snapshots/s1/", Typeflag: tar.TypeDir, Mode: 0o755},
	}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	if sp.trees[""] == "" || sp.trees["s1"] == "" {
		t.Fatalf("an empty volume has no tree: %v", sp.trees)
	}

	if top := sp.tops[""]; top.mode != 0o711 {
		t.Errorf("top of the volume: %+v", top)
	}

	dst, meta := filepath.Join(t.TempDir(), "d"), filepath.Join(t.TempDir(), "m")
	for _, d := range []string{dst, meta} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	_, err = (&images.Unpacker{}).Unpack(sp.trees[""], dst, meta)
	if err != nil {
		t.Fatalf("unpacking an empty volume's tree: %v", err)
	}

	ents, err := os.ReadDir(dst)
	if err != nil || len(ents) != 0 {
		t.Errorf("empty volume unpacked to %v (%v)", ents, err)
	}
}
