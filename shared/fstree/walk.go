// Package fstree walks directory trees that someone else built (a container's root, an
// overlay upper layer) without trusting them: every step is relative to an open directory
// (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV), nothing but
// directories is opened by the walk itself, only one directory of the tree is open at a
// time (a parent is reopened through ".." and checked against its inode), and depth and
// hard-link tracking are bounded.
package fstree

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Limits bound a walk.
type Limits struct {
	// MaxDepth is the deepest directory level below the root that is entered.
	MaxDepth int
	// MaxLinks is how many multiply-linked inodes Links remembers.
	MaxLinks int
}

// DefaultLimits are far above what a system's own tree needs (PATH_MAX already stops
// path-based tools at ~2048 levels) and keep a hostile tree's cost bounded.
var DefaultLimits = Limits{MaxDepth: 8192, MaxLinks: 1 << 18}

// LimitError is returned when a tree exceeds one of the Limits.
type LimitError struct {
	What  string // "depth", "hard links"
	Limit int
	Path  string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: tree exceeds the %s limit of %d", e.Path, e.What, e.Limit)
}

// SkipDir, returned by Visitor.Dir, leaves the directory's content out.
//
//lint:ignore ST1012 named like fs.SkipDir, whose role it plays
var SkipDir = errors.New("skip this directory")

// Entry is one file met by the walk.
type Entry struct {
	// Dir is an fd of the directory holding the entry (-1 for the root). It is valid
	// during the callback only.
	Dir   int
	Name  string // name in Dir; "" for the root
	Stat  unix.Stat_t
	Depth int // 0 for the root
	node  *node
}

type node struct {
	parent *node
	name   string
}

// Path is the entry's path relative to the root ("." for the root).
func (e *Entry) Path() string { return e.node.path() }

func (n *node) path() string {
	if n.parent == nil {
		return "."
	}

	var parts []string
	for ; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}

	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// Type is the entry's S_IFMT bits.
func (e *Entry) Type() uint32 { return e.Stat.Mode & unix.S_IFMT }

// Visitor receives the walk. Dir and Leave get an fd open on the directory itself
// (O_RDONLY|O_DIRECTORY), valid during the call.
type Visitor struct {
	Dir   func(e *Entry, fd int) error // before the content; may return SkipDir
	Leave func(e *Entry, fd int) error // after the content (nil: nothing)
	File  func(e *Entry) error         // every non-directory; nothing is opened
}

type frame struct {
	fd    int
	entry *Entry
	names []string
	next  int
}

// resolveBeneath confines every open of the walk to the directory it starts from.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// Walk visits the tree at root (a trusted host path, not followed if it is a symlink),
// directories before their content, names in byte order. It stops at the first error, at
// a limit (LimitError), or with ctx's error when ctx is cancelled.
func Walk(ctx context.Context, root string, lim Limits, v Visitor) error {
	err := ctx.Err()
	if err != nil {
		return err
	}

	rootFd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", root, err)
	}

	rootEntry := &Entry{Dir: -1, node: &node{}}
	err = unix.Fstat(rootFd, &rootEntry.Stat)
	if err != nil {
		_ = unix.Close(rootFd)
		return fmt.Errorf("stating %q: %w", root, err)
	}

	w := walker{ctx: ctx, lim: lim, v: v}
	defer w.closeAll()

	return w.run(rootEntry, rootFd)
}

type walker struct {
	ctx   context.Context
	lim   Limits
	v     Visitor
	stack []*frame
	count int
}

func (w *walker) closeAll() {
	for _, f := range w.stack {
		if f.fd >= 0 {
			_ = unix.Close(f.fd)
		}
	}
}

// enter calls Dir on a directory and pushes it, taking ownership of fd.
func (w *walker) enter(e *Entry, fd int) error {
	err := w.v.Dir(e, fd)
	if errors.Is(err, SkipDir) {
		_ = unix.Close(fd)
		return nil
	}

	if err != nil {
		_ = unix.Close(fd)
		return err
	}

	names, err := readNames(fd)
	if err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("%s: %w", e.Path(), err)
	}

	// Only the deepest directory stays open; its parent is reopened on the way back.
	if n := len(w.stack); n > 0 && w.stack[n-1].fd >= 0 {
		_ = unix.Close(w.stack[n-1].fd)
		w.stack[n-1].fd = -1
	}

	w.stack = append(w.stack, &frame{fd: fd, entry: e, names: names})
	return nil
}

func (w *walker) run(root *Entry, rootFd int) error {
	err := w.enter(root, rootFd)
	if err != nil {
		return err
	}

	for len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if top.next == len(top.names) {
			err := w.leave(top)
			if err != nil {
				return err
			}

			continue
		}

		name := top.names[top.next]
		top.next++
		w.count++
		if w.count%256 == 0 {
			err := w.ctx.Err()
			if err != nil {
				return err
			}
		}

		e := &Entry{Dir: top.fd, Name: name, Depth: len(w.stack), node: &node{parent: top.entry.node, name: name}}
		err := unix.Fstatat(top.fd, name, &e.Stat, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("stating %s: %w", e.Path(), err)
		}

		if e.Type() != unix.S_IFDIR {
			err := w.v.File(e)
			if err != nil {
				return err
			}

			continue
		}

		if e.Depth > w.lim.MaxDepth {
			return &LimitError{What: "depth", Limit: w.lim.MaxDepth, Path: e.Path()}
		}

		fd, err := openChecked(top.fd, name, unix.O_DIRECTORY, &e.Stat)
		if err != nil {
			return fmt.Errorf("opening %s: %w", e.Path(), err)
		}

		err = w.enter(e, fd)
		if err != nil {
			return err
		}
	}

	return nil
}

// leave pops a finished directory: its parent is reopened through ".." (and must be the
// same inode), then Leave runs.
func (w *walker) leave(top *frame) error {
	w.stack = w.stack[:len(w.stack)-1]
	if n := len(w.stack); n > 0 {
		parent := w.stack[n-1]
		pfd, err := unix.Openat2(top.fd, "..", &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == nil {
			err = sameInode(pfd, &parent.entry.Stat)
			if err != nil {
				_ = unix.Close(pfd)
			}
		}

		if err != nil {
			_ = unix.Close(top.fd)
			return fmt.Errorf("returning to %s: %w", parent.entry.Path(), err)
		}

		parent.fd = pfd
		top.entry.Dir = pfd
	}

	var err error
	if w.v.Leave != nil {
		err = w.v.Leave(top.entry, top.fd)
	}

	_ = unix.Close(top.fd)
	return err
}

// ErrChanged means the tree changed under the walk.
var ErrChanged = errors.New("file changed during the walk")

func sameInode(fd int, want *unix.Stat_t) error {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	if err != nil {
		return err
	}

	if st.Dev != want.Dev || st.Ino != want.Ino || st.Mode&unix.S_IFMT != want.Mode&unix.S_IFMT {
		return ErrChanged
	}

	return nil
}

// openChecked opens name beneath dir without following any link and without blocking,
// and checks that it is the inode that was stat'ed.
func openChecked(dir int, name string, flags int, want *unix.Stat_t) (int, error) {
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   uint64(unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | flags),
		Resolve: resolveBeneath,
	})
	if err != nil {
		return -1, err
	}

	err = sameInode(fd, want)
	if err != nil {
		_ = unix.Close(fd)
		return -1, err
	}

	return fd, nil
}

// Open opens a regular file entry for reading (O_NOFOLLOW|O_NONBLOCK, beneath its
// directory) and checks that it is still the walked inode. Other types are refused: a
// FIFO or a device is never opened.
func (e *Entry) Open() (int, error) {
	if e.Type() != unix.S_IFREG {
		return -1, fmt.Errorf("opening %s: not a regular file", e.Path())
	}

	fd, err := openChecked(e.Dir, e.Name, 0, &e.Stat)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", e.Path(), err)
	}

	return fd, nil
}

// readNames lists a directory's entries (without . and ..), sorted.
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return nil, fmt.Errorf("reading directory: %w", err)
		}

		if n <= 0 {
			break
		}

		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}

	slices.Sort(names)
	return names, nil
}
