package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/setup"
)

// Mounts into a running container are made from the daemon itself: a dedicated goroutine
// locks its OS thread, unshares that thread's fs_struct (setns into a mount namespace
// refuses a thread that shares it, and Go's threads all do) and joins the container's
// mount namespace. The thread is never handed back: the goroutine ends while locked, so
// the runtime destroys it. Threads the runtime creates meanwhile come from its template
// thread, not from this one. Only the mount namespace is joined; host root keeps its
// capabilities over it (it owns the container's user namespace), and a user namespace
// could not be joined by a multithreaded process anyway.

// inMountNS runs fn in the mount namespace of pid, with "/" being that namespace's root.
func inMountNS(pid int, fn func() error) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return fmt.Errorf("opening mount namespace of %d: %w", pid, err)
	}

	defer func() { _ = ns.Close() }()

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with the goroutine.

		err := unix.Unshare(unix.CLONE_FS)
		if err != nil {
			done <- fmt.Errorf("unsharing fs state: %w", err)
			return
		}

		err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS)
		if err != nil {
			done <- fmt.Errorf("joining mount namespace of %d: %w", pid, err)
			return
		}

		done <- fn()
	}()

	return <-done
}

// detachedTree clones the mount tree at src (recursively) into a detached mount, idmapped
// through the user namespace userns (nil: not idmapped) and read-only if asked. The
// caller closes the returned fd.
func detachedTree(src string, userns *os.File, readOnly bool) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("cloning mount of %q: %w", src, err)
	}

	attr := unix.MountAttr{}
	if userns != nil {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns.Fd())
	}

	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}

	if attr.Attr_set != 0 {
		// The idmap must be set on the tree's top alone (a recursive idmap of submounts
		// from other filesystems may be refused); read-only goes everywhere.
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr)
		if err == nil && readOnly {
			err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		}

		if err != nil {
			_ = unix.Close(tree)
			return -1, fmt.Errorf("setting attributes of mount of %q: %w", src, err)
		}
	}

	return tree, nil
}

// stageIdmapped mounts an idmapped (container root = host root) copy of src at dst, a
// host path the container's setup then binds from. The container's copy of a mount made
// before it started is locked: its root cannot remount it read-write or uncover it.
func stageIdmapped(src, dst string, ids idmap.Set, readOnly bool) error {
	userns, cleanup, err := ids.Userns()
	if err != nil {
		return err
	}

	defer cleanup()

	tree, err := detachedTree(src, userns, readOnly)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(tree) }()

	err = makeMountPoint(dst, tree)
	if err != nil {
		return err
	}

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("staging %q on %q: %w", src, dst, err)
	}

	return nil
}

// makeMountPoint creates dst as a directory or an empty file, whichever tree is.
func makeMountPoint(dst string, tree int) error {
	var st unix.Stat_t

	err := unix.Fstat(tree, &st)
	if err != nil {
		return err
	}

	err = os.MkdirAll(filepath.Dir(dst), 0o711)
	if err != nil {
		return err
	}

	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(dst, 0o711)
	} else {
		var f *os.File
		f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			_ = f.Close()
		}
	}

	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating mount point %q: %w", dst, err)
	}

	return nil
}

// unstage lazily unmounts and removes a staging mount point; missing is fine.
func unstage(dst string) {
	for range 4 {
		err := unix.Unmount(dst, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil {
			break
		}
	}

	_ = os.Remove(dst)
}

// hotMount attaches src at target inside the running container whose init is pid,
// idmapped through the container's own user namespace when idmapped is set. Missing
// mount points are created as the container's root (fsuid/fsgid of this throwaway
// thread): host root is not mapped in the container's own filesystems (its /dev tmpfs
// refuses it with EOVERFLOW) and would show as nobody elsewhere.
func hotMount(pid int, ids idmap.Set, src, target string, idmapped, readOnly bool) error {
	var userns *os.File
	if idmapped {
		var err error
		userns, err = os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
		if err != nil {
			return fmt.Errorf("opening user namespace of %d: %w", pid, err)
		}

		defer func() { _ = userns.Close() }()
	}

	tree, err := detachedTree(src, userns, readOnly)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(tree) }()

	return inMountNS(pid, func() error {
		_ = unix.Setfsuid(int(ids.HostUID))
		_ = unix.Setfsgid(int(ids.HostGID))

		rootFD, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the container's root: %w", err)
		}

		defer func() { _ = unix.Close(rootFD) }()

		return setup.AttachTree(rootFD, "/", tree, target)
	})
}

// hotUnmount detaches whatever is mounted at target inside the running container, and
// with removeNode also deletes the empty file left as its mount point (a device node's
// place in /dev). The last component is not followed; a path the container changed under
// us can only make this unmount or remove something of the container's own.
func hotUnmount(pid int, ids idmap.Set, target string, removeNode bool) error {
	return inMountNS(pid, func() error {
		_ = unix.Setfsuid(int(ids.HostUID))
		_ = unix.Setfsgid(int(ids.HostGID))

		p := filepath.Clean("/" + target)
		err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %q in the container: %w", target, err)
		}

		var st unix.Stat_t
		err = unix.Lstat(p, &st)
		if removeNode && err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0 {
			_ = unix.Unlink(p)
		}

		return nil
	})
}
