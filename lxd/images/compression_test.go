package images

import (
	"bytes"
	"compress/bzip2"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestOpenTarDetectsCompression(t *testing.T) {
	for _, compression := range []string{"gzip", "zstd", "xz", "none"} {
		t.Run(compression, func(t *testing.T) {
			data := makeTar(t, compression, file("./metadata.yaml", goodMetadata), dir("./rootfs/"), file("./rootfs/hello", "hi"))

			tr, closer, err := OpenTar(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("OpenTar: %v", err)
			}

			defer closer.Close()

			var names []string

			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}

				if err != nil {
					t.Fatalf("reading %s tar: %v", compression, err)
				}

				names = append(names, hdr.Name)
			}

			got := strings.Join(names, ",")
			if got != "./metadata.yaml,./rootfs/,./rootfs/hello" {
				t.Fatalf("entries = %q", got)
			}
		})
	}
}

func TestOpenTarBzip2Magic(t *testing.T) {
	// The stdlib cannot write bzip2: check detection routes to the bzip2 reader, which then
	// fails on the truncated stream rather than reporting an unknown format.
	tr, _, err := OpenTar(bytes.NewReader([]byte("BZh91AY&SY")))
	if err != nil {
		t.Fatalf("OpenTar: %v", err)
	}

	_, err = tr.Next()

	var se bzip2.StructuralError
	if err == nil || errors.Is(err, ErrUnknownFormat) || (!errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF)) {
		t.Fatalf("Next on truncated bzip2 = %v, want a bzip2 error", err)
	}
}

func TestOpenTarUnknownFormat(t *testing.T) {
	for name, data := range map[string][]byte{
		"text":     []byte(strings.Repeat("not an image ", 100)),
		"empty":    nil,
		"squashfs": append([]byte("hsqs"), make([]byte, 600)...),
	} {
		_, _, err := OpenTar(bytes.NewReader(data))
		if !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: err = %v, want ErrUnknownFormat", name, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	p := writeTemp(t, []byte("abc"))

	fp, err := Fingerprint(p)
	if err != nil {
		t.Fatal(err)
	}

	if fp != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("fingerprint = %s", fp)
	}

	_, err = Fingerprint(p + ".missing")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}
