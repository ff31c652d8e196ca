package sparse

import (
	"bytes"
	"fmt"
	"os"
)

// holeBlock is the granularity at which HoleWriter looks for zeros: a filesystem block.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// HoleWriter writes a stream into a new file, seeking over every block of zeros instead
// of writing it, so a sparse file received as plain bytes (the files API sends holes as
// zeros) is sparse again on disk. Close sets the final size.
type HoleWriter struct {
	f   *os.File
	off int64
}

// NewHoleWriter writes into f from offset 0. f must be empty.
func NewHoleWriter(f *os.File) *HoleWriter { return &HoleWriter{f: f} }

// Write implements io.Writer.
func (w *HoleWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		// Stay aligned to blocks so that a hole is skipped whole.
		k := min(len(p), holeBlock-int(w.off%holeBlock))
		piece := p[:k]
		if !bytes.Equal(piece, zeroBlock[:k]) {
			_, err := w.f.WriteAt(piece, w.off)
			if err != nil {
				return n, fmt.Errorf("writing %s: %w", w.f.Name(), err)
			}
		}

		w.off += int64(k)
		n += k
		p = p[k:]
	}

	return n, nil
}

// Close gives the file its full size (a trailing hole was never written); it does not
// close the file.
func (w *HoleWriter) Close() error {
	err := w.f.Truncate(w.off)
	if err != nil {
		return fmt.Errorf("sizing %s: %w", w.f.Name(), err)
	}

	return nil
}
