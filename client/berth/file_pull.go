package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/sparse"
)

// A pulled tree comes from the server, and from inside a container before that: both are
// untrusted. Every file, directory and symlink is created relative to an open directory
// fd, never through a path, so a symlink the tree made a moment ago (or one an entry
// listed twice would turn into a directory) cannot redirect a later write outside the
// target. Symlinks are created as they are and never followed here.

// maxPullDepth bounds a recursive pull; each level holds one directory fd open.
const maxPullDepth = 512

func pullOne(ctx context.Context, c *client.Client, name, p, dst string, recursive bool) error {
	// dst's parent is the user's choice and trusted; what is made below it is not.
	parent, err := unix.Open(filepath.Dir(dst), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(dst), Err: err}
	}

	defer unix.Close(parent)

	return pullAt(ctx, c, name, p, parent, filepath.Base(dst), dst, recursive, 0)
}

// pullAt pulls p into the entry base of the directory dirfd; shown is its path for errors.
func pullAt(ctx context.Context, c *client.Client, name, p string, dirfd int, base, shown string, recursive bool, depth int) error {
	if depth > maxPullDepth {
		return fmt.Errorf("pulling %q: deeper than the limit of %d levels", p, maxPullDepth)
	}

	body, f, err := c.GetInstanceFile(ctx, name, p)
	if err != nil {
		return err
	}

	switch f.Type {
	case "directory":
		if !recursive {
			return fmt.Errorf("can't pull a directory without --recursive")
		}

		return pullDir(ctx, c, name, p, f.Entries, dirfd, base, shown, uint32(f.Mode&0o777)|0o700, depth)
	case "symlink":
		err := unix.Unlinkat(dirfd, base, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: shown, Err: err}
		}

		err = unix.Symlinkat(f.Target, dirfd, base)
		if err != nil {
			return &os.PathError{Op: "symlink", Path: shown, Err: err}
		}

		return nil
	}

	defer body.Close()
	mode := uint32(0o644)
	if f.Mode >= 0 {
		mode = uint32(f.Mode & 0o777)
	}

	// O_NOFOLLOW: a symlink already at this name is refused, not written through.
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "open", Path: shown, Err: err}
	}

	out := os.NewFile(uintptr(fd), shown)
	// Holes arrive as zeros (LXD's wire format has no holes): write them as holes again, so
	// a sparse file stays sparse here.
	hw := sparse.NewHoleWriter(out)
	_, err = io.Copy(hw, body)
	if err == nil {
		err = hw.Close()
	}

	if err == nil {
		err = out.Chmod(os.FileMode(mode))
	}

	closeErr := out.Close()
	if err != nil {
		return err
	}

	return closeErr
}

// pullDir makes (or reuses) the directory base in dirfd and pulls each entry into it.
func pullDir(ctx context.Context, c *client.Client, name, p string, entries []string, dirfd int, base, shown string, mode uint32, depth int) error {
	err := unix.Mkdirat(dirfd, base, mode)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: shown, Err: err}
	}

	// An existing entry must be a real directory: O_NOFOLLOW refuses a symlink.
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open directory", Path: shown, Err: err}
	}

	defer unix.Close(fd)

	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		// Names come from the container's directory: one plain element each, once.
		if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "/\x00") || seen[e] {
			return fmt.Errorf("pulling %q: refusing entry name %q", p, e)
		}

		seen[e] = true
		err := pullAt(ctx, c, name, path.Join(p, e), fd, e, filepath.Join(shown, e), true, depth+1)
		if err != nil {
			return err
		}
	}

	return nil
}
