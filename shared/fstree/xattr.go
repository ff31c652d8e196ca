package fstree

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// maxXattr is the kernel's XATTR_SIZE_MAX and XATTR_LIST_MAX.
const maxXattr = 64 << 10

// Xattrs reads an entry's extended attributes without following or opening it: through
// fd when the caller has the entry open (a directory or a regular file; pass -1 otherwise),
// else by its name under the /proc/self/fd link of its directory, not following the name.
func Xattrs(e *Entry, fd int) ([]Xattr, error) {
	var list func([]byte) (int, error)
	var get func(string, []byte) (int, error)
	if fd >= 0 {
		list = func(b []byte) (int, error) { return unix.Flistxattr(fd, b) }
		get = func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) }
	} else {
		p := fmt.Sprintf("/proc/self/fd/%d/%s", e.Dir, e.Name)
		list = func(b []byte) (int, error) { return unix.Llistxattr(p, b) }
		get = func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) }
	}

	names, err := readSized(list)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("listing xattrs of %s: %w", e.Path(), err)
	}

	var out []Xattr
	for _, name := range bytes.Split(names, []byte{0}) {
		if len(name) == 0 {
			continue
		}

		v, err := readSized(func(b []byte) (int, error) { return get(string(name), b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}

		if err != nil {
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, e.Path(), err)
		}

		out = append(out, Xattr{Name: string(name), Value: v})
	}

	return out, nil
}

// readSized calls fn with a growing buffer until the value fits (at most maxXattr).
func readSized(fn func([]byte) (int, error)) ([]byte, error) {
	for size := 1024; ; size *= 4 {
		size = min(size, maxXattr)
		buf := make([]byte, size)
		n, err := fn(buf)
		if errors.Is(err, unix.ERANGE) && size < maxXattr {
			continue
		}

		if err != nil {
			return nil, err
		}

		return buf[:n], nil
	}
}
