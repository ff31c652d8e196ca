package fstree

import "golang.org/x/sys/unix"

type inodeKey struct{ dev, ino uint64 }

// Links remembers the first entry of each multiply-linked inode so that later names can be
// made hard links to it, up to a limit.
type Links struct {
	max  int
	seen map[inodeKey]*node
}

// NewLinks tracks up to lim.MaxLinks inodes.
func NewLinks(lim Limits) *Links {
	return &Links{max: lim.MaxLinks, seen: map[inodeKey]*node{}}
}

// First returns the path of the first entry met with e's inode, or "" when e is the first
// (or has a single link), which is then remembered. More inodes than the limit is a
// LimitError. Directories are never tracked.
func (l *Links) First(e *Entry) (string, error) {
	if e.Stat.Nlink < 2 || e.Type() == unix.S_IFDIR {
		return "", nil
	}

	key := inodeKey{dev: e.Stat.Dev, ino: e.Stat.Ino}
	if n, ok := l.seen[key]; ok {
		return n.path(), nil
	}

	if len(l.seen) >= l.max {
		return "", &LimitError{What: "hard-linked files", Limit: l.max, Path: e.Path()}
	}

	l.seen[key] = e.node
	return "", nil
}
