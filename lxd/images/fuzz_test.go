package images

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// Bounds of the fuzz targets below: inputs larger than this are passed over (real
// images are larger, but the decoders' logic is exercised just as well by small ones).
const (
	fuzzMaxInput = 256 << 10
	// fuzzMaxDeclared bounds the sum of the sizes the members declare. A GNU sparse
	// member may declare terabytes in a few bytes and Unpack writes its holes out as
	// zeros (issue 9, item 10: sparse files must stay sparse); until that is fixed the
	// fuzzer must not fill the disk.
	fuzzMaxDeclared = 16 << 20
	fuzzMaxTime     = 10 * time.Second
)

// FuzzUnpack feeds uncompressed tarballs to Unpack against a temporary root and checks
// that, whatever the archive holds and whether or not Unpack fails: nothing is written
// outside rootfs/ and meta/ (a canary directory beside them stays as it was and gains no
// hard link), no device node is created, what is written is bounded by what the archive
// declares, and Unpack returns within fuzzMaxTime.
func FuzzUnpack(f *testing.F) {
	testutil.RequireRoot(f, "set owners and security xattrs")

	for _, entries := range [][]tarEntry{
		{file("metadata.yaml", goodMetadata), dir("rootfs/"), file("rootfs/etc/hostname", "c1")},
		{dir("rootfs/"), symlink("rootfs/up", "../outside"), file("rootfs/up/planted", "x")},
		{dir("rootfs/"), hardlink("rootfs/h", "rootfs/../outside/canary")},
		{file("/metadata.yaml", goodMetadata), dir("/rootfs/"), file("/rootfs/etc/inittab", "x"), hardlink("/rootfs/h", "/rootfs/etc/inittab")},
		{dir("/rootfs/"), file("/rootfs/../outside/canary", "x"), hardlink("/rootfs/h", "/outside/canary")},
	} {
		f.Add(tarBytes(entries...))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput || !isPlainTar(data) || testutil.TarDeclared(data) > fuzzMaxDeclared {
			return
		}

		base := t.TempDir()
		rootfs, meta, outside := filepath.Join(base, "rootfs"), filepath.Join(base, "meta"), filepath.Join(base, "outside")
		for _, d := range []string{rootfs, meta, outside} {
			err := os.Mkdir(d, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		}

		canary := filepath.Join(outside, "canary")
		err := os.WriteFile(canary, []byte("host"), 0o600)
		if err != nil {
			t.Fatal(err)
		}

		tarball := filepath.Join(base, "image.tar")
		err = os.WriteFile(tarball, data, 0o600)
		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		u := &Unpacker{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 2}
		_, _ = u.Unpack(tarball, rootfs, meta)
		if d := time.Since(start); d > fuzzMaxTime {
			t.Fatalf("Unpack took %v", d)
		}

		// Nothing beside the two roots.
		names, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}

		if len(names) != 4 {
			t.Fatalf("Unpack wrote beside its roots: %v", names)
		}

		names, _ = os.ReadDir(outside)
		got, _ := os.ReadFile(canary)
		var st unix.Stat_t
		_ = unix.Lstat(canary, &st)
		if len(names) != 1 || string(got) != "host" || st.Nlink != 1 || st.Mode&0o7777 != 0o600 || st.Uid != 0 {
			t.Fatalf("canary outside the root changed: entries %v, content %q, nlink %d, mode %o, uid %d", names, got, st.Nlink, st.Mode, st.Uid)
		}

		var written int64
		seen := map[uint64]bool{} // hard links count once
		for _, root := range []string{rootfs, meta} {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}

				if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
					t.Errorf("device node created: %s", p)
				}

				var st unix.Stat_t
				err = unix.Lstat(p, &st)
				if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && !seen[st.Ino] {
					seen[st.Ino] = true
					written += st.Size
				}

				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}

		if declared := testutil.TarDeclared(data); written > declared {
			t.Fatalf("Unpack wrote %d bytes of files, the archive declares %d", written, declared)
		}
	})
}

// isPlainTar reports whether data is an uncompressed tarball as OpenTar detects it.
// Compressed input is left out: the decompressors are kept libraries, and a small input
// can inflate to gigabytes, which would make the fuzzer measure them instead of us.
func isPlainTar(data []byte) bool {
	return len(data) >= 262 && string(data[257:262]) == "ustar"
}

// tarBytes is makeTar for seeds (no *testing.T, no compression).
func tarBytes(entries ...tarEntry) []byte {
	var buf bytes.Buffer

	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Size = int64(len(e.body))
		hdr.Format = tar.FormatPAX

		err := tw.WriteHeader(&hdr)
		if err == nil {
			_, err = tw.Write([]byte(e.body))
		}

		if err != nil {
			panic(err)
		}
	}

	err := tw.Close()
	if err != nil {
		panic(err)
	}

	return buf.Bytes()
}

// FuzzParseMetadata checks metadata.yaml decoding: no panic; what it accepts is
// normalised (LXD architecture name, clean absolute template paths, plain template file
// names), validating the result again changes nothing, and it survives a YAML round trip.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(goodMetadata))
	f.Add([]byte("architecture: x86_64\ntemplates:\n  /etc//hosts/:\n    template: hosts.tpl\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxMetadataSize {
			return // ReadMetadata refuses these before parsing
		}

		start := time.Now()
		meta, err := ParseMetadata(data)
		if d := time.Since(start); d > fuzzMaxTime {
			t.Fatalf("ParseMetadata took %v", d)
		}

		if err != nil {
			return
		}

		if arch, err := ArchitectureName(meta.Architecture); err != nil || arch != meta.Architecture {
			t.Fatalf("architecture %q is not normalised (%q, %v)", meta.Architecture, arch, err)
		}

		for p, tpl := range meta.Templates {
			if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || p == "/" {
				t.Fatalf("template path %q is not clean and absolute", p)
			}

			if !isPlainName(tpl.Template) {
				t.Fatalf("template file %q is not a plain name", tpl.Template)
			}
		}

		again := cloneMetadata(t, meta)
		err = validateMetadata(again)
		if err != nil || !reflect.DeepEqual(again, meta) {
			t.Fatalf("validating twice: %v, %+v != %+v", err, again, meta)
		}

		out, err := yaml.Marshal(meta)
		if err != nil {
			t.Fatalf("marshalling accepted metadata: %v", err)
		}

		_, err = ParseMetadata(out)
		if err != nil {
			t.Fatalf("accepted metadata does not parse again: %v\n%s", err, out)
		}
	})
}

func cloneMetadata(t *testing.T, m *api.ImageMetadata) *api.ImageMetadata {
	t.Helper()

	out := *m
	if m.Templates != nil {
		out.Templates = map[string]*api.ImageMetadataTemplate{}
		for k, v := range m.Templates {
			c := *v
			out.Templates[k] = &c
		}
	}

	return &out
}

// FuzzReadMetadata reads metadata.yaml out of hostile tarballs: no panic, a bounded
// time, and an error unless the archive has a valid metadata.yaml. It starts after
// OpenTar, whose 1 MiB read buffer would make each run cost milliseconds.
func FuzzReadMetadata(f *testing.F) {
	f.Add(tarBytes(file("metadata.yaml", goodMetadata), dir("rootfs/")))
	f.Add(tarBytes(file("./metadata.yaml", "architecture: mips\n")))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput || !isPlainTar(data) {
			return
		}

		start := time.Now()
		meta, _, err := readMetadata(tar.NewReader(bytes.NewReader(data)), "fuzz.tar")
		if d := time.Since(start); d > fuzzMaxTime {
			t.Fatalf("ReadMetadata took %v", d)
		}

		if err == nil && meta == nil {
			t.Fatal("ReadMetadata returned no metadata and no error")
		}

	})
}
