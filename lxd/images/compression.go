package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/berth-dev/berth/shared/sparse"
)

// ErrUnknownFormat is returned by OpenTar for data that is neither a tarball nor a
// compressed one in a supported format.
var ErrUnknownFormat = errors.New("unknown image format: not a tarball compressed with gzip, xz, zstd or bzip2")

var (
	magicGzip     = []byte{0x1f, 0x8b}
	magicBzip2    = []byte("BZh")
	magicXz       = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd     = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicSquashfs = []byte("hsqs")
	magicQcow2    = []byte{'Q', 'F', 'I', 0xfb}
)

// OpenTar detects r's compression from its magic bytes and returns a tar reader over the
// decompressed stream. The closer releases the decompressor (not r).
func OpenTar(r io.Reader) (*tar.Reader, io.Closer, error) {
	dr, closer, err := openStream(r)
	if err != nil {
		return nil, nil, err
	}

	return tar.NewReader(dr), closer, nil
}

// OpenSparseTar is OpenTar with a reader that can extract PAX 1.0 sparse entries without
// reading their holes (sparse.TarReader.WriteSparse).
func OpenSparseTar(r io.Reader) (*sparse.TarReader, io.Closer, error) {
	dr, closer, err := openStream(r)
	if err != nil {
		return nil, nil, err
	}

	return sparse.NewTarReader(dr), closer, nil
}

// openStream returns r decompressed.
func openStream(r io.Reader) (io.Reader, io.Closer, error) {
	br := bufio.NewReaderSize(r, 1<<20)

	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("reading image header: %w", err)
	}

	var dr io.Reader

	closer := io.Closer(nopCloser{})

	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("opening gzip stream: %w", err)
		}

		dr, closer = zr, zr
	case bytes.HasPrefix(head, magicXz):
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("opening xz stream: %w", err)
		}

		dr = zr
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("opening zstd stream: %w", err)
		}

		dr, closer = zr, closerFunc(func() error { zr.Close(); return nil })
	case bytes.HasPrefix(head, magicBzip2):
		dr = bzip2.NewReader(br)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		dr = br
	case bytes.HasPrefix(head, magicSquashfs), bytes.HasPrefix(head, magicQcow2):
		return nil, nil, fmt.Errorf("%w (SquashFS and qcow2 images are not supported)", ErrUnknownFormat)
	default:
		return nil, nil, ErrUnknownFormat
	}

	return dr, closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
