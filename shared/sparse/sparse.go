// Package sparse copies and archives files without filling their holes: a file a container
// made with `truncate -s 2T` has almost no data, and every copy or archive of it must stay
// that small on the host. Data runs are found with lseek(SEEK_DATA/SEEK_HOLE); copies use
// FICLONE or copy_file_range where the filesystem can, and tarballs use the PAX 1.0 sparse
// format (GNU.sparse.major=1), which GNU tar and Go's archive/tar both read.
package sparse

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Extent is one run of data in a file; everything between extents is a hole.
type Extent struct {
	Offset, Length int64
}

// chunk is how much is copied between two checks of the context.
const chunk = 8 << 20

// ForEachExtent calls fn for each data run of the file open at fd, in order, up to size.
// A filesystem without SEEK_DATA is treated as holding only data.
func ForEachExtent(fd int, size int64, fn func(Extent) error) error {
	off := int64(0)
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole up to the end
		}

		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return fn(Extent{Offset: off, Length: size - off})
		}

		if err != nil {
			return fmt.Errorf("seeking data: %w", err)
		}

		if data >= size {
			return nil
		}

		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seeking hole: %w", err)
		}

		hole = min(hole, size)
		err = fn(Extent{Offset: data, Length: hole - data})
		if err != nil {
			return err
		}

		off = hole
	}

	return nil
}

// Extents lists the data runs of the file open at fd. To keep the list (and a tar sparse
// map) at most max entries long, runs separated by small holes are merged, the smallest
// holes first: only those holes are then read as zeros.
func Extents(fd int, size int64, max int) ([]Extent, error) {
	var out []Extent
	gap := int64(4096)
	err := ForEachExtent(fd, size, func(e Extent) error {
		out = append(out, e)
		for len(out) > max {
			out = coalesce(out, gap)
			gap *= 2
		}

		return nil
	})

	return out, err
}

// coalesce merges neighbouring extents separated by at most gap bytes of hole.
func coalesce(in []Extent, gap int64) []Extent {
	out := in[:1]
	for _, e := range in[1:] {
		last := &out[len(out)-1]
		if e.Offset-(last.Offset+last.Length) <= gap {
			last.Length = e.Offset + e.Length - last.Offset
			continue
		}

		out = append(out, e)
	}

	return out
}

// DataSize is the number of bytes the extents hold.
func DataSize(exts []Extent) int64 {
	var n int64
	for _, e := range exts {
		n += e.Length
	}

	return n
}

// Copy copies the first size bytes of the regular file open at src to the empty regular
// file open at dst, leaving holes where src has them: a whole-file clone (FICLONE) where
// the filesystem shares extents, otherwise each data run with copy_file_range (or
// pread/pwrite across filesystems), then ftruncate to size. onData, if set, is told the
// bytes of each piece copied. It stops with ctx's error when ctx is cancelled.
func Copy(ctx context.Context, dst, src int, size int64, onData func(int64)) error {
	if size > 0 && unix.IoctlFileClone(dst, src) == nil {
		var st unix.Stat_t
		if unix.Fstat(dst, &st) == nil && st.Size == size {
			return nil
		}
	}

	useCFR := true
	err := ForEachExtent(src, size, func(e Extent) error {
		for off, end := e.Offset, e.Offset+e.Length; off < end; {
			err := ctx.Err()
			if err != nil {
				return err
			}

			n := min(end-off, chunk)
			var done int64
			if useCFR {
				done, err = copyRange(dst, src, off, n)
				if isNoCFR(err) {
					useCFR, err = false, nil
					continue
				}
			} else {
				done, err = preadPwrite(dst, src, off, n)
			}

			if err != nil {
				return err
			}

			if done == 0 {
				return fmt.Errorf("copying at offset %d: %w (file shrank while copying)", off, io.ErrUnexpectedEOF)
			}

			off += done
			if onData != nil {
				onData(done)
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	err = unix.Ftruncate(dst, size)
	if err != nil {
		return fmt.Errorf("setting size: %w", err)
	}

	return nil
}

func copyRange(dst, src int, off, n int64) (int64, error) {
	for {
		roff, woff := off, off
		got, err := unix.CopyFileRange(src, &roff, dst, &woff, int(n), 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return 0, err
		}

		return int64(got), nil
	}
}

// isNoCFR reports a copy_file_range the kernel or the filesystem pair refuses.
func isNoCFR(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EINVAL)
}

var bufPool = make(chan []byte, 4)

func getBuf() []byte {
	select {
	case b := <-bufPool:
		return b
	default:
		return make([]byte, 1<<20)
	}
}

func putBuf(b []byte) {
	select {
	case bufPool <- b:
	default:
	}
}

func preadPwrite(dst, src int, off, n int64) (int64, error) {
	buf := getBuf()
	defer putBuf(buf)

	n = min(n, int64(len(buf)))
	got, err := unix.Pread(src, buf[:n], off)
	for errors.Is(err, unix.EINTR) {
		got, err = unix.Pread(src, buf[:n], off)
	}

	if err != nil {
		return 0, fmt.Errorf("reading at %d: %w", off, err)
	}

	for w := 0; w < got; {
		k, err := unix.Pwrite(dst, buf[w:got], off+int64(w))
		if err != nil {
			return 0, fmt.Errorf("writing at %d: %w", off+int64(w), err)
		}

		w += k
	}

	return int64(got), nil
}
