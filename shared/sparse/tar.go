package sparse

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MaxTarExtents bounds a tar entry's sparse map: Go's reader refuses maps over 1 MiB, and
// an entry of 2×13 digits per extent keeps well below that. Files with more runs have
// their smallest holes archived as zeros (see Extents).
const MaxTarExtents = 16384

const (
	blockSize = 512
	// ustarMaxSize is the largest size the 11 octal digits of a ustar header hold.
	ustarMaxSize = 1<<33 - 1
	ustarMaxID   = 1<<21 - 1
)

// WriteTar archives the regular file open at fd as one PAX 1.0 sparse entry: hdr is the
// entry as for tar.Writer.WriteHeader (TypeReg, Size the apparent size, PAXRecords for
// xattrs), exts its data runs (Extents). Go's tar.Writer cannot write sparse entries, so
// the entry is written to raw, the stream under tw, after flushing tw; tw stays usable for
// the next entries. onData, if set, is told the bytes of each piece of data written.
//
// The layout is GNU tar's for --sparse --format=posix: a PAX header carrying
// GNU.sparse.{major=1,minor=0,name,realsize}, then a ustar header named
// GNUSparseFile.0/<base> whose data starts with the sparse map ("count\n" then
// "offset\nlength\n" per run, padded to a block) followed by the runs' bytes.
func WriteTar(ctx context.Context, tw *tar.Writer, raw io.Writer, hdr *tar.Header, fd int, exts []Extent, onData func(int64)) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("sparse entry %q: type %q is not a regular file", hdr.Name, hdr.Typeflag)
	}

	err := tw.Flush()
	if err != nil {
		return err
	}

	sparseMap := encodeMap(exts, hdr.Size)
	stored := int64(len(sparseMap)) + DataSize(exts)

	records := maps.Clone(hdr.PAXRecords)
	if records == nil {
		records = map[string]string{}
	}

	records["GNU.sparse.major"] = "1"
	records["GNU.sparse.minor"] = "0"
	records["GNU.sparse.name"] = hdr.Name
	records["GNU.sparse.realsize"] = strconv.FormatInt(hdr.Size, 10)
	delete(records, "path")

	block := tar.Header{
		Typeflag: tar.TypeReg,
		Name:     "GNUSparseFile.0/" + asciiBase(hdr.Name),
		Mode:     hdr.Mode & 0o7777,
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		Size:     stored,
		ModTime:  hdr.ModTime,
		Format:   tar.FormatUSTAR,
	}

	if stored > ustarMaxSize {
		records["size"] = strconv.FormatInt(stored, 10)
		block.Size = 0
	}

	if hdr.Uid > ustarMaxID || hdr.Gid > ustarMaxID || hdr.Uid < 0 || hdr.Gid < 0 {
		records["uid"] = strconv.Itoa(hdr.Uid)
		records["gid"] = strconv.Itoa(hdr.Gid)
		block.Uid, block.Gid = 0, 0
	}

	if hdr.ModTime.Unix() < 0 || hdr.ModTime.Unix() > ustarMaxSize {
		records["mtime"] = strconv.FormatInt(hdr.ModTime.Unix(), 10)
		block.ModTime = zeroTime
	}

	paxData := encodePAX(records)
	paxHdr, err := headerBlock(tar.Header{
		Typeflag: tar.TypeReg, // patched to 'x' below: tar.Writer refuses to encode it
		Name:     "PaxHeaders.0/" + asciiBase(hdr.Name),
		Size:     int64(len(paxData)),
		ModTime:  zeroTime,
		Format:   tar.FormatUSTAR,
	})
	if err != nil {
		return err
	}

	paxHdr[156] = tar.TypeXHeader
	setChecksum(paxHdr)

	fileHdr, err := headerBlock(block)
	if err != nil {
		return err
	}

	for _, b := range [][]byte{paxHdr, pad(paxData), fileHdr, sparseMap} {
		_, err := raw.Write(b)
		if err != nil {
			return err
		}
	}

	written, err := writeRuns(ctx, raw, fd, exts, onData)
	if err != nil {
		return err
	}

	_, err = raw.Write(make([]byte, padLen(written)))
	return err
}

var zeroTime = time.Unix(0, 0)

func writeRuns(ctx context.Context, raw io.Writer, fd int, exts []Extent, onData func(int64)) (int64, error) {
	buf := getBuf()
	defer putBuf(buf)

	var written int64
	for _, e := range exts {
		for off, end := e.Offset, e.Offset+e.Length; off < end; {
			err := ctx.Err()
			if err != nil {
				return written, err
			}

			n := min(end-off, int64(len(buf)))
			got, err := unix.Pread(fd, buf[:n], off)
			if errors.Is(err, unix.EINTR) {
				continue
			}

			if err != nil {
				return written, fmt.Errorf("reading at %d: %w", off, err)
			}

			if got == 0 {
				return written, fmt.Errorf("reading at %d: %w (file shrank while archiving)", off, io.ErrUnexpectedEOF)
			}

			_, err = raw.Write(buf[:got])
			if err != nil {
				return written, err
			}

			off += int64(got)
			written += int64(got)
			if onData != nil {
				onData(int64(got))
			}
		}
	}

	return written, nil
}

// encodeMap is the PAX 1.0 sparse map, padded to a block. A file ending in a hole gets a
// final empty run at its size, as GNU tar writes it, so the real size is explicit.
func encodeMap(exts []Extent, size int64) []byte {
	entries := exts
	if len(exts) == 0 || exts[len(exts)-1].Offset+exts[len(exts)-1].Length < size {
		entries = append(slices.Clone(exts), Extent{Offset: size})
	}

	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(entries)) + "\n")
	for _, e := range entries {
		b.WriteString(strconv.FormatInt(e.Offset, 10) + "\n" + strconv.FormatInt(e.Length, 10) + "\n")
	}

	return pad(b.Bytes())
}

// encodePAX formats records as "<len> <key>=<value>\n", sorted, len counting itself.
func encodePAX(records map[string]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(records)) {
		v := records[k]
		size := len(k) + len(v) + 3
		size += len(strconv.Itoa(size))
		rec := strconv.Itoa(size) + " " + k + "=" + v + "\n"
		if len(rec) != size {
			rec = strconv.Itoa(len(rec)) + " " + k + "=" + v + "\n"
		}

		b.WriteString(rec)
	}

	return b.Bytes()
}

// headerBlock encodes one ustar header block with Go's own encoder.
func headerBlock(h tar.Header) ([]byte, error) {
	var b bytes.Buffer
	err := tar.NewWriter(&b).WriteHeader(&h)
	if err != nil {
		return nil, fmt.Errorf("encoding tar header %q: %w", h.Name, err)
	}

	if b.Len() != blockSize {
		return nil, fmt.Errorf("encoding tar header %q: %d bytes, want one block", h.Name, b.Len())
	}

	return b.Bytes(), nil
}

// setChecksum recomputes a header block's checksum after a field was patched.
func setChecksum(blk []byte) {
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}

	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// asciiBase is a short printable ASCII rendering of a name's last element for the
// placeholder names readers replace by GNU.sparse.name.
func asciiBase(name string) string {
	base := path.Base(strings.TrimSuffix(name, "/"))
	var b strings.Builder
	for _, r := range base {
		if b.Len() >= 64 {
			break
		}

		if r > 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}

	if b.Len() == 0 {
		return "file"
	}

	return b.String()
}

func padLen(n int64) int64 { return (blockSize - n%blockSize) % blockSize }

func pad(b []byte) []byte { return append(b, make([]byte, padLen(int64(len(b))))...) }
