package sparse

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TarReader is a tar.Reader that can extract PAX 1.0 sparse entries (the ones WriteTar and
// GNU tar write) without reading their holes: Go's reader hides the sparse map and serves
// holes as zeros, which for a 2 TiB file means minutes of zeros. Everything else is
// tar.Reader's.
//
// It sees the raw stream under the tar.Reader: Next keeps the last raw bytes it consumed,
// where the entry's ustar header and sparse map are, and WriteSparse reads the data runs
// straight from the stream, then lets tar.Reader skip them (Seek over bytes it will not be
// served again).
type TarReader struct {
	*tar.Reader
	src *tapReader
	hdr *tar.Header
}

// NewTarReader reads the uncompressed tar stream r (from its first byte).
func NewTarReader(r io.Reader) *TarReader {
	src := &tapReader{r: r}
	return &TarReader{Reader: tar.NewReader(src), src: src}
}

// tapWindow is how much of what Next consumes is kept: a maximal sparse map (1 MiB, Go's
// limit) and the header block before it.
const tapWindow = 1<<20 + 2*blockSize

// Next is tar.Reader's Next, remembering the raw bytes it consumed.
func (t *TarReader) Next() (*tar.Header, error) {
	t.src.tap = t.src.tap[:0]
	t.src.tapStart = t.src.pos
	t.src.tapping = true
	hdr, err := t.Reader.Next()
	t.src.tapping = false
	t.hdr = hdr
	return hdr, err
}

// IsSparse1 reports whether hdr is a PAX 1.0 sparse entry.
func IsSparse1(hdr *tar.Header) bool {
	return hdr != nil && hdr.PAXRecords["GNU.sparse.major"] == "1" && hdr.PAXRecords["GNU.sparse.minor"] == "0"
}

// WriteSparse extracts the current entry into the empty regular file fd when it is a PAX
// 1.0 sparse entry: each data run written at its offset, holes left as holes, the file
// sized to the entry's size. It returns false, having done nothing, for any other entry
// (the caller reads it as usual). The entry must not have been read yet.
func (t *TarReader) WriteSparse(fd int) (bool, error) {
	if !IsSparse1(t.hdr) {
		return false, nil
	}

	exts, stored, err := t.src.sparseMap()
	if err != nil {
		return true, fmt.Errorf("reading sparse map of %q: %w", t.hdr.Name, err)
	}

	// The map must describe exactly the data that follows it and fit in the entry.
	if want, ok := t.hdr.PAXRecords["size"]; ok && want != strconv.FormatInt(stored, 10) {
		return true, fmt.Errorf("sparse entry %q: stored size %d, PAX size %s", t.hdr.Name, stored, want)
	}

	err = validate(exts, t.hdr.Size)
	if err != nil {
		return true, fmt.Errorf("sparse entry %q: %w", t.hdr.Name, err)
	}

	buf := getBuf()
	defer putBuf(buf)

	var phys int64
	for _, e := range exts {
		for off, end := e.Offset, e.Offset+e.Length; off < end; {
			n := min(end-off, int64(len(buf)))
			_, err := io.ReadFull(t.src.r, buf[:n])
			if err != nil {
				return true, fmt.Errorf("reading sparse entry %q: %w", t.hdr.Name, err)
			}

			t.src.pos += n
			t.src.credit += n
			phys += n
			for w := int64(0); w < n; {
				k, err := unix.Pwrite(fd, buf[w:n], off+w)
				if err != nil {
					return true, fmt.Errorf("writing sparse entry %q: %w", t.hdr.Name, err)
				}

				w += int64(k)
			}

			off += n
		}
	}

	if phys != DataSize(exts) {
		return true, fmt.Errorf("sparse entry %q: short data", t.hdr.Name)
	}

	err = unix.Ftruncate(fd, t.hdr.Size)
	if err != nil {
		return true, fmt.Errorf("sizing sparse entry %q: %w", t.hdr.Name, err)
	}

	return true, nil
}

// validate checks runs are in order, do not overlap and stay within size.
func validate(exts []Extent, size int64) error {
	var end int64
	for _, e := range exts {
		if e.Offset < end || e.Length < 0 || e.Offset+e.Length > size || e.Offset+e.Length < e.Offset {
			return errors.New("invalid sparse map")
		}

		end = e.Offset + e.Length
	}

	return nil
}

// tapReader is the raw stream under tar.Reader.
type tapReader struct {
	r        io.Reader
	pos      int64 // bytes consumed from r
	tap      []byte
	tapStart int64 // stream offset of the first byte ever put in tap since Next began
	tapping  bool
	// credit is how many bytes WriteSparse consumed on tar.Reader's behalf: tar.Reader
	// still thinks they are ahead, and skips them with Seek (or reads zeros).
	credit int64
}

func (s *tapReader) Read(p []byte) (int, error) {
	if s.credit > 0 {
		n := int(min(int64(len(p)), s.credit))
		clear(p[:n])
		s.credit -= int64(n)
		return n, nil
	}

	n, err := s.r.Read(p)
	if s.tapping && n > 0 {
		s.tap = append(s.tap, p[:n]...)
		if over := len(s.tap) - tapWindow; over > 0 {
			s.tapStart += int64(over)
			s.tap = append(s.tap[:0], s.tap[over:]...)
		}
	}

	if !s.tapping {
		s.tapStart = s.pos + int64(n)
	}

	s.pos += int64(n)
	return n, err
}

// Seek supports only tar.Reader's skipping (whence io.SeekCurrent, offset >= 0): credit
// first, then the stream itself is read and discarded.
func (s *tapReader) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || off < 0 {
		return 0, errors.New("tap: unsupported seek")
	}

	skip := min(off, s.credit)
	s.credit -= skip
	if rest := off - skip; rest > 0 {
		n, err := io.CopyN(io.Discard, s.r, rest)
		s.pos += n
		if err != nil {
			return s.logical(), err
		}
	}

	// Skipped bytes are an earlier entry's data: the tap restarts after them.
	s.tap = s.tap[:0]
	s.tapStart = s.pos

	return s.logical(), nil
}

// logical is the position tar.Reader believes it is at.
func (s *tapReader) logical() int64 { return s.pos - s.credit }

// sparseMap finds, in the bytes the last Next consumed, the entry's ustar header block
// (the last block with the ustar magic: map blocks hold only digits, newlines and NULs)
// and parses the map after it. It returns the runs and the entry's stored size.
func (s *tapReader) sparseMap() ([]Extent, int64, error) {
	end := s.pos - s.credit
	if end != s.tapStart+int64(len(s.tap)) || end%blockSize != 0 {
		return nil, 0, errors.New("stream position lost")
	}

	hdrAt := -1
	for off := int64(len(s.tap)) - 2*blockSize; off >= 0; off -= blockSize {
		if (s.tapStart+off)%blockSize != 0 {
			continue
		}

		blk := s.tap[off : off+blockSize]
		if bytes.HasPrefix(blk[257:], []byte("ustar")) && checksumOK(blk) {
			hdrAt = int(off)
			break
		}
	}

	if hdrAt < 0 {
		return nil, 0, errors.New("entry header not found")
	}

	blk := s.tap[hdrAt : hdrAt+blockSize]
	mapBytes := s.tap[hdrAt+blockSize:]
	exts, err := parseMap(mapBytes)
	if err != nil {
		return nil, 0, err
	}

	stored := int64(len(mapBytes)) + DataSize(exts)
	if size, err := parseOctal(blk[124:136]); err == nil && size != 0 && size != stored {
		return nil, 0, fmt.Errorf("map and data make %d bytes, header says %d", stored, size)
	}

	return exts, stored, nil
}

func parseMap(b []byte) ([]Extent, error) {
	text := strings.TrimRight(string(b), "\x00")
	fields := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(fields) == 0 {
		return nil, errors.New("empty map")
	}

	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n < 0 || int64(len(fields)) != 1+2*n {
		return nil, errors.New("malformed map")
	}

	exts := make([]Extent, 0, n)
	for i := int64(0); i < n; i++ {
		off, err1 := strconv.ParseInt(fields[1+2*i], 10, 64)
		length, err2 := strconv.ParseInt(fields[2+2*i], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, errors.New("malformed map entry")
		}

		if length > 0 {
			exts = append(exts, Extent{Offset: off, Length: length})
		}
	}

	return exts, nil
}

func checksumOK(blk []byte) bool {
	want, err := parseOctal(blk[148:156])
	if err != nil {
		return false
	}

	sum := int64(0)
	for i, c := range blk {
		if i >= 148 && i < 156 {
			c = ' '
		}

		sum += int64(c)
	}

	return sum == want
}

func parseOctal(b []byte) (int64, error) {
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}

	return strconv.ParseInt(s, 8, 64)
}
