// Package compressor makes the compressed streams of the tarballs berthd writes: images
// published from instances, instance and volume exports and backups.
//
// It is the daemon's alone. The CLI builds its images gzipped (shared/imagebuild) and
// never links zstd or xz: their package initialisation cost every CLI command about a
// millisecond before main on a slow VM (doc/host-tuning.md), `berth start` included.
package compressor

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names accepted by New. An empty name means Gzip.
const (
	Gzip = "gzip"
	Zstd = "zstd"
	Xz   = "xz"
	None = "none"
)

// New wraps w in the named compressor. Closing the result flushes the compressor but does
// not close w.
func New(w io.Writer, compression string) (io.WriteCloser, error) {
	switch compression {
	case "", Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w)
	case Xz:
		return xz.NewWriter(w)
	case None:
		return nopCloser{w}, nil
	default:
		return nil, fmt.Errorf("unsupported compression %q (want gzip, zstd, xz or none)", compression)
	}
}

// Write writes through the named compressor: write gets the compressed stream, which is
// then flushed and closed (w itself is not closed).
func Write(w io.Writer, compression string, write func(io.Writer) error) error {
	cw, err := New(w, compression)
	if err != nil {
		return err
	}

	err = write(cw)
	if err != nil {
		return err
	}

	err = cw.Close()
	if err != nil {
		return fmt.Errorf("closing %s stream: %w", compression, err)
	}

	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
