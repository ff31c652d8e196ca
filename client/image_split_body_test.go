package client_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
)

// A split body is the multipart form LXD reads (metadata then rootfs, with their file
// names), and its Size is the exact length of what it yields: the push's
// Content-Length.
func TestNewSplitBody(t *testing.T) {
	meta := strings.Repeat("m", 1000)
	rootfs := strings.Repeat("r", 70000)
	b, err := client.NewSplitBody(strings.NewReader(meta), "a.tar.xz", int64(len(meta)), strings.NewReader(rootfs), "a.squashfs", int64(len(rootfs)))
	if err != nil {
		t.Fatal(err)
	}

	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}

	if int64(len(data)) != b.Size {
		t.Fatalf("body of %d bytes, Size %d", len(data), b.Size)
	}

	mt, params, err := mime.ParseMediaType(b.ContentType)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", b.ContentType, err)
	}

	mr := multipart.NewReader(bytes.NewReader(data), params["boundary"])
	for _, want := range []struct{ field, file, body string }{{"metadata", "a.tar.xz", meta}, {"rootfs", "a.squashfs", rootfs}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}

		got, _ := io.ReadAll(p)
		if p.FormName() != want.field || p.FileName() != want.file || string(got) != want.body {
			t.Errorf("part %q (%q), %d bytes, want %q (%q), %d bytes", p.FormName(), p.FileName(), len(got), want.field, want.file, len(want.body))
		}
	}

	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after the two parts: %v, want EOF", err)
	}
}
