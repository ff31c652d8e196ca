package testdaemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ImageTarball writes a minimal unified image (metadata.yaml and a rootfs
// holding payload) into a temporary file and returns its path and
// fingerprint.
func ImageTarball(t testing.TB, payload []byte) (path, fingerprint string) {
	t.Helper()

	var buf bytes.Buffer

	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	meta := []byte("architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  description: Test image\n")
	now := time.Unix(1700000000, 0)

	files := []struct {
		name string
		mode int64
		data []byte
		dir  bool
	}{
		{name: "metadata.yaml", mode: 0o644, data: meta},
		{name: "rootfs/", mode: 0o755, dir: true},
		{name: "rootfs/payload", mode: 0o644, data: payload},
	}

	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		}

		err := tw.WriteHeader(hdr)
		if err == nil {
			_, err = tw.Write(f.data)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}

	path = filepath.Join(t.TempDir(), "image.tar.gz")

	err := os.WriteFile(path, buf.Bytes(), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	sum := sha256.Sum256(buf.Bytes())

	return path, hex.EncodeToString(sum[:])
}
