package compressor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// TestWrite: what write writes comes out compressed and whole (the stream is closed); a
// write's error is returned as it is; an unknown name writes nothing.
func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, Gzip, func(w io.Writer) error {
		_, err := w.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	r, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}

	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}

	buf.Reset()
	if err := Write(&buf, None, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil || buf.String() != "x" {
		t.Errorf("none: %q, %v", buf.String(), err)
	}

	boom := errors.New("boom")
	if err := Write(io.Discard, Zstd, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("the write's error came back as %v", err)
	}

	buf.Reset()
	called := false
	err = Write(&buf, "bzip2", func(io.Writer) error { called = true; return nil })
	if err == nil || called || buf.Len() != 0 {
		t.Errorf("bzip2: err %v, write called %v, %d bytes", err, called, buf.Len())
	}
}
