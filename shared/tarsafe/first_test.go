package tarsafe

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

func TestFirstFile(t *testing.T) {
	archive := func(entries ...tar.Header) *tar.Reader {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			h := h
			_ = tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}

		_ = tw.Close()
		return tar.NewReader(&buf)
	}

	dir := tar.Header{Name: "backup/", Typeflag: tar.TypeDir, Mode: 0o755}
	index := tar.Header{Name: "./backup/index.yaml", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5}

	got, err := FirstFile(archive(dir, index), "backup/index.yaml", 10)
	if err != nil || string(got) != "xxxxx" {
		t.Fatalf("index after a directory = %q, %v", got, err)
	}

	for name, tr := range map[string]*tar.Reader{
		"another file first": archive(tar.Header{Name: "backup/other", Typeflag: tar.TypeReg, Size: 1}, index),
		"too large":          archive(tar.Header{Name: "backup/index.yaml", Typeflag: tar.TypeReg, Size: 11}),
		"a symlink":          archive(tar.Header{Name: "backup/index.yaml", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}),
		"escaping":           archive(tar.Header{Name: "../backup/index.yaml", Typeflag: tar.TypeReg, Size: 1}),
	} {
		_, err := FirstFile(tr, "backup/index.yaml", 10)
		if err == nil || !strings.Contains(err.Error(), "first file of a backup must be") {
			t.Errorf("%s: %v", name, err)
		}
	}

	_, err = FirstFile(archive(dir), "backup/index.yaml", 10)
	if err == nil || !strings.Contains(err.Error(), "looking for backup/index.yaml") {
		t.Errorf("no index: %v", err)
	}
}
