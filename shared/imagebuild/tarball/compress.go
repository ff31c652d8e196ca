// Package tarball writes unified image tarballs (metadata.yaml, templates/, rootfs/).
//
// It lives under shared/ so that both the CLI's image builder and the daemon's publish path
// share one careful writer for owners, modes, hard links and xattrs.
package tarball

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names accepted by NewCompressor and Pack. An empty name means Gzip.
const (
	Gzip = "gzip"
	Zstd = "zstd"
	Xz   = "xz"
	None = "none"
)

// NewCompressor wraps w in the named compressor. Closing the result flushes the compressor
// but does not close w.
func NewCompressor(w io.Writer, compression string) (io.WriteCloser, error) {
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

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
