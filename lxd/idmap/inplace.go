package idmap

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/fstree"
)

// RemapInPlace moves the owners of the tree at root from the host ids of from to the
// same container ids in to, where it lies (as CopyRemapped does in a copy): for a btrfs
// snapshot of a container's tree, which shares its data and only needs new owners. The
// ids inside capability and ACL xattrs move too; chown clears setuid bits and file
// capabilities, so mode and those xattrs are set again after it. Ids outside from's
// range are kept, which also makes a second visit of a hard-linked inode a no-op. The
// tree must be the caller's alone (a fresh snapshot no container sees): the walk never
// follows a symlink and opens only directories and regular files, beneath root.
func RemapInPlace(ctx context.Context, root string, from, to Set) error {
	r := remap{from: from, to: to}
	err := fstree.Walk(ctx, root, fstree.DefaultLimits, fstree.Visitor{
		Dir: func(e *fstree.Entry, fd int) error { return r.shiftOpen(e, fd) },
		File: func(e *fstree.Entry) error {
			if e.Type() == unix.S_IFREG {
				fd, err := e.Open()
				if err != nil {
					return err
				}

				defer unix.Close(fd)
				return r.shiftOpen(e, fd)
			}

			uid, gid, changed := r.owner(e)
			if !changed {
				return nil
			}

			// Symlinks, devices, FIFOs and sockets: never opened; no capabilities, and
			// an ACL on them is not something containers make.
			err := unix.Fchownat(e.Dir, e.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil && e.Type() != unix.S_IFLNK {
				err = unix.Fchmodat(e.Dir, e.Name, e.Stat.Mode&0o7777, 0)
			}

			if err != nil {
				return fmt.Errorf("shifting owner of %s: %w", e.Path(), err)
			}

			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("shifting owners under %q: %w", root, err)
	}

	return nil
}

// owner is e's owner moved, and whether it changes.
func (r remap) owner(e *fstree.Entry) (int, int, bool) {
	uid := r.UIDToHost(int64(e.Stat.Uid))
	gid := r.GIDToHost(int64(e.Stat.Gid))
	return int(uid), int(gid), uid != int64(e.Stat.Uid) || gid != int64(e.Stat.Gid)
}

// shiftOpen moves the owner, mode and id-bearing xattrs of e, open as fd (a directory or
// a regular file).
func (r remap) shiftOpen(e *fstree.Entry, fd int) error {
	uid, gid, changed := r.owner(e)
	if !changed {
		return nil
	}

	xattrs, err := fstree.Xattrs(e, fd)
	if err != nil {
		return err
	}

	err = unix.Fchown(fd, uid, gid)
	if err == nil {
		err = unix.Fchmod(fd, e.Stat.Mode&0o7777)
	}

	if err != nil {
		return fmt.Errorf("shifting owner of %s: %w", e.Path(), err)
	}

	for _, x := range xattrs {
		var v []byte
		switch x.Name {
		case "security.capability":
			v, err = r.shiftCapability(x.Value)
		case "system.posix_acl_access", "system.posix_acl_default":
			v, err = r.shiftACL(x.Value)
		default:
			continue
		}

		if err == nil {
			err = unix.Fsetxattr(fd, x.Name, v, 0)
		}

		if err != nil {
			return fmt.Errorf("shifting %s of %s: %w", x.Name, e.Path(), err)
		}
	}

	return nil
}
