package images

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/compressor"
)

type tarEntry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Uid: os.Geteuid(), Gid: os.Getegid(), ModTime: time.Unix(1700000000, 0)}, body: body}
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, Uid: os.Geteuid(), Gid: os.Getegid(), ModTime: time.Unix(1700000000, 0)}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, Uid: os.Geteuid(), Gid: os.Getegid(), ModTime: time.Unix(1700000000, 0)}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Uid: os.Geteuid(), Gid: os.Getegid(), ModTime: time.Unix(1700000000, 0)}}
}

// makeTar returns a tarball of entries, compressed with one of tarball's compressions.
func makeTar(t *testing.T, compression string, entries ...tarEntry) []byte {
	t.Helper()

	var buf bytes.Buffer

	cw, err := compressor.New(&buf, compression)
	if err != nil {
		t.Fatal(err)
	}

	tw := tar.NewWriter(cw)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Size = int64(len(e.body))

		err := tw.WriteHeader(&hdr)
		if err != nil {
			t.Fatalf("writing header %q: %v", hdr.Name, err)
		}

		_, err = tw.Write([]byte(e.body))
		if err != nil {
			t.Fatal(err)
		}
	}

	err = tw.Close()
	if err != nil {
		t.Fatal(err)
	}

	err = cw.Close()
	if err != nil {
		t.Fatal(err)
	}

	return buf.Bytes()
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()

	p := filepath.Join(t.TempDir(), "image.tar")

	err := os.WriteFile(p, data, 0o600)
	if err != nil {
		t.Fatal(err)
	}

	return p
}

const goodMetadata = `architecture: amd64
creation_date: 1700000000
properties:
  os: debian
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
`
