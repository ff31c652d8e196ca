package sparse

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeSparse creates a file of size bytes holding data only at the given offsets (one
// 4 KiB block of a recognisable pattern each).
func makeSparse(t *testing.T, path string, size int64, at ...int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()
	for i, off := range at {
		_, err := f.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, 4096), off)
		if err != nil {
			t.Fatal(err)
		}
	}

	err = f.Truncate(size)
	if err != nil {
		t.Fatal(err)
	}
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	err := syscall.Stat(path, &st)
	if err != nil {
		t.Fatal(err)
	}

	return st.Blocks * 512
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	return sha256.Sum256(data)
}

func TestExtents(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	makeSparse(t, p, 1<<30, 0, 1<<20, 1<<29)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()
	exts, err := Extents(int(f.Fd()), 1<<30, 100)
	if err != nil {
		t.Fatal(err)
	}

	if len(exts) != 3 || exts[0] != (Extent{0, 4096}) || exts[1] != (Extent{1 << 20, 4096}) || exts[2] != (Extent{1 << 29, 4096}) {
		t.Fatalf("extents %v", exts)
	}

	// Over the limit, the runs nearest each other merge first.
	exts, err = Extents(int(f.Fd()), 1<<30, 2)
	if err != nil {
		t.Fatal(err)
	}

	if len(exts) != 2 || exts[0] != (Extent{0, 1<<20 + 4096}) {
		t.Fatalf("coalesced extents %v", exts)
	}
}

// TestCopyHuge copies a 2 TiB file holding three blocks: it must take no time and no space.
func TestCopyHuge(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	const size = 2 << 40
	makeSparse(t, src, size, 0, 1<<40, size-4096)

	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}

	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}

	defer out.Close()
	start := time.Now()
	var copied int64
	err = Copy(context.Background(), int(out.Fd()), int(in.Fd()), size, func(n int64) { copied += n })
	if err != nil {
		t.Fatal(err)
	}

	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("copy took %v", d)
	}

	fi, _ := out.Stat()
	if fi.Size() != size {
		t.Fatalf("copy is %d bytes, want %d", fi.Size(), size)
	}

	if a := allocated(t, dst); a > 1<<20 {
		t.Fatalf("copy allocates %d bytes", a)
	}

	if copied != 3*4096 {
		t.Fatalf("copied %d data bytes, want %d", copied, 3*4096)
	}

	for i, off := range []int64{0, 1 << 40, size - 4096} {
		b := make([]byte, 4096)
		_, err := out.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}

		if !bytes.Equal(b, bytes.Repeat([]byte{byte('a' + i)}, 4096)) {
			t.Fatalf("block at %d differs", off)
		}
	}
}

func TestCopyCancelled(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeSparse(t, src, 1<<20, 0)
	in, _ := os.Open(src)
	defer in.Close()
	out, _ := os.Create(filepath.Join(dir, "dst"))
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Copy(ctx, int(out.Fd()), int(in.Fd()), 1<<20, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("copy with a cancelled context: %v", err)
	}
}

// writeArchive archives path as name (sparse) with one plain member before and after.
func writeArchive(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()
	fi, _ := f.Stat()
	exts, err := Extents(int(f.Fd()), fi.Size(), MaxTarExtents)
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	plain := func(n string) {
		must(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, ModTime: time.Unix(1e9, 0)}))
		_, err := tw.Write([]byte("hello"))
		must(t, err)
	}

	plain("before")
	hdr := &tar.Header{
		Name: name, Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 1001, Size: fi.Size(),
		ModTime: time.Unix(1.5e9, 0), PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"},
	}
	must(t, WriteTar(context.Background(), tw, &buf, hdr, int(f.Fd()), exts, nil))
	plain("after")
	must(t, tw.Close())

	return buf.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTarRoundTrip writes a sparse entry and reads it back with Go's reader and with GNU
// tar: same name, size, owner, mode, xattr and bytes, and GNU tar extracts it sparse.
func TestTarRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 64 << 20
	makeSparse(t, src, size, 8192, 1<<20, 40<<20)
	long := strings.Repeat("d/", 80) + "sparse file é"
	archive := writeArchive(t, src, long)
	if len(archive) > 64<<10 {
		t.Fatalf("archive of a file with 12 KiB of data is %d bytes", len(archive))
	}

	tr := tar.NewReader(bytes.NewReader(archive))
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		must(t, err)
		names = append(names, hdr.Name)
		data, err := io.ReadAll(tr)
		must(t, err)
		if hdr.Name != long {
			if string(data) != "hello" {
				t.Fatalf("%s holds %q", hdr.Name, data)
			}

			continue
		}

		if hdr.Size != size || hdr.Uid != 1000 || hdr.Gid != 1001 || hdr.Mode != 0o4755 ||
			hdr.PAXRecords["SCHILY.xattr.user.k"] != "v" || hdr.ModTime.Unix() != 1.5e9 {
			t.Fatalf("header read back: %+v", hdr)
		}

		if sha256.Sum256(data) != sum(t, src) {
			t.Fatal("content read back by Go differs")
		}
	}

	if strings.Join(names, ",") != "before,"+long+",after" {
		t.Fatalf("members %q", names)
	}

	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatalf("GNU tar is needed for this test: %v", err)
	}

	arc := filepath.Join(dir, "a.tar")
	must(t, os.WriteFile(arc, archive, 0o600))
	out, err := exec.Command("tar", "-tvf", arc).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "67108864") || !strings.Contains(string(out), "1000/1001") {
		t.Fatalf("tar -tvf: %v\n%s", err, out)
	}

	x := filepath.Join(dir, "x")
	must(t, os.Mkdir(x, 0o755))
	out, err = exec.Command("tar", "-xf", arc, "-C", x).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, out)
	}

	got := filepath.Join(x, long)
	if sum(t, got) != sum(t, src) {
		t.Fatal("content extracted by GNU tar differs")
	}

	if a := allocated(t, got); a > 1<<20 {
		t.Fatalf("GNU tar extracted %d allocated bytes: not sparse", a)
	}
}

// TestTarHuge archives a 2 TiB file with one block of data: fast and small, and both
// readers see its 2 TiB.
func TestTarHuge(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 2 << 40
	makeSparse(t, src, size, 1<<40)
	start := time.Now()
	archive := writeArchive(t, src, "big")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("archiving took %v", d)
	}

	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		must(t, err)
		if hdr.Name == "big" && hdr.Size != size {
			t.Fatalf("big read back as %d bytes", hdr.Size)
		}
	}

	arc := filepath.Join(dir, "a.tar")
	must(t, os.WriteFile(arc, archive, 0o600))
	out, err := exec.Command("tar", "-tvf", arc).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2199023255552") {
		t.Fatalf("tar -tvf: %v\n%s", err, out)
	}
}

func TestHoleWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	w := NewHoleWriter(f)
	want := make([]byte, 8<<20)
	copy(want[5000:], "data in the middle")
	// Odd write sizes cross block boundaries.
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 7777)
		_, err := w.Write(rest[:n])
		must(t, err)
		rest = rest[n:]
	}

	must(t, w.Close())
	got, err := os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}

	if a := allocated(t, p); a > 64<<10 {
		t.Fatalf("%d bytes allocated for one block of data", a)
	}
}

// TestTarReaderWriteSparse reads back an archive with TarReader: the sparse entry is
// extracted run by run into a sparse file identical to the source, and the entries around
// it are read normally.
func TestTarReaderWriteSparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 2 << 40
	makeSparse(t, src, size, 8192, 1<<40)
	archive := writeArchive(t, src, "big")

	// GNU tar writes the same format: check we read its output too.
	small := filepath.Join(dir, "small")
	makeSparse(t, small, 64<<20, 0, 32<<20)
	gnu := filepath.Join(dir, "gnu.tar")
	out, err := exec.Command("tar", "--sparse", "--format=posix", "--sparse-version=1.0", "-C", dir, "-cf", gnu, "small").CombinedOutput()
	if err != nil {
		t.Fatalf("tar -c: %v\n%s", err, out)
	}

	gnuData, err := os.ReadFile(gnu)
	must(t, err)

	for _, tc := range []struct {
		name, member, orig string
		data               []byte
	}{{"ours", "big", src, archive}, {"gnu", "small", small, gnuData}} {
		tr := NewTarReader(bytes.NewReader(tc.data))
		var seen []string
		start := time.Now()
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}

			must(t, err)
			seen = append(seen, hdr.Name)
			if hdr.Name != tc.member {
				data, err := io.ReadAll(tr)
				must(t, err)
				if string(data) != "hello" {
					t.Fatalf("%s: %s holds %q", tc.name, hdr.Name, data)
				}

				continue
			}

			dst := filepath.Join(dir, tc.name+".out")
			f, err := os.Create(dst)
			must(t, err)
			ok, err := tr.WriteSparse(int(f.Fd()))
			_ = f.Close()
			if !ok || err != nil {
				t.Fatalf("%s: WriteSparse = %v, %v", tc.name, ok, err)
			}

			fi, _ := os.Stat(dst)
			fo, _ := os.Stat(tc.orig)
			if fi.Size() != fo.Size() || allocated(t, dst) > 1<<20 {
				t.Fatalf("%s: extracted %d bytes, %d allocated", tc.name, fi.Size(), allocated(t, dst))
			}

			if tc.name == "gnu" && sum(t, dst) != sum(t, tc.orig) {
				t.Fatalf("%s: content differs", tc.name)
			}

			if tc.name == "ours" {
				b := make([]byte, 4096)
				g, _ := os.Open(dst)
				_, _ = g.ReadAt(b, 1<<40)
				_ = g.Close()
				if !bytes.Equal(b, bytes.Repeat([]byte{'b'}, 4096)) {
					t.Fatal("block at 1 TiB differs")
				}
			}
		}

		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: reading took %v", tc.name, d)
		}

		if tc.name == "ours" && strings.Join(seen, ",") != "before,big,after" {
			t.Fatalf("members %v", seen)
		}
	}
}
