package device

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

// Mounts into a running container (hotplug) are made like LXD's: the kernel locks the
// flags of a mount (read-only, nosuid, nodev, ...) only when it reaches a mount namespace
// owned by a less privileged user namespace by copy or propagation, never when host root
// attaches it there directly. So each container gets, at start, a slave of a host
// directory that is a shared mount (hotplugDir on the host, hotplugTarget inside). A hot
// mount is attached under the host side, propagates into the container with its flags
// locked, and is then moved onto its target from inside the container's mount namespace
// (a move keeps the locks). The host side is unmounted afterwards; the container's copy
// is no longer at the spot the unmount propagates to, so it stays.
//
// The daemon enters the container's mount namespace on a dedicated goroutine that locks
// its OS thread, unshares that thread's fs_struct (setns into a mount namespace refuses a
// thread that shares it, and Go's threads all do) and joins it. The thread is never
// handed back: the goroutine ends while locked, so the runtime destroys it. Only the
// mount namespace is joined; host root keeps its capabilities over it (it owns the
// container's user namespace), and a user namespace could not be joined by a
// multithreaded process anyway.

// hotplugTarget is where the container sees its hotplug directory.
const hotplugTarget = "/dev/.berth-mounts"

// hotplugDir is the host side of an instance's hotplug directory ($BERTH_DIR/shmounts/<name>).
// It lies outside the instance directory, which is removed recursively on delete.
func (h *Host) hotplugDir(name string) string {
	return filepath.Join(h.Dir, "shmounts", name)
}

// hotplugMount is the start-time mount that gives the container its slave of hotplugDir.
func (h *Host) hotplugMount(name string) setup.Mount {
	return setup.Mount{Source: h.hotplugDir(name), Target: hotplugTarget, Propagation: setup.PropagationSlave}
}

// setupHotplugDir makes hotplugDir a fresh shared bind mount of itself, before a start.
// Both directories are searchable by others (0711, like the staging directories): the
// container's setup opens the path as the container's root.
func (h *Host) setupHotplugDir(name string) error {
	dir := h.hotplugDir(name)
	removeHotplugDir(dir)

	err := os.MkdirAll(filepath.Dir(dir), 0o711)
	if err == nil {
		err = os.Chmod(filepath.Dir(dir), 0o711)
	}

	if err == nil {
		err = os.Mkdir(dir, 0o711)
	}

	if err != nil {
		return fmt.Errorf("creating hotplug directory: %w", err)
	}

	err = unix.Mount(dir, dir, "", unix.MS_BIND, "")
	if err == nil {
		err = unix.Mount("", dir, "", unix.MS_SHARED, "")
	}

	if err != nil {
		removeHotplugDir(dir)
		return fmt.Errorf("making %q a shared mount: %w", dir, err)
	}

	return nil
}

// removeHotplugDir unmounts the hotplug directory with whatever a failed hotplug left
// under it, then removes the (now empty) mount points. Nothing is removed recursively:
// an entry still mounted is left alone rather than having its content deleted.
func removeHotplugDir(dir string) {
	unmountAll(dir)

	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		unstage(filepath.Join(dir, e.Name()))
	}

	_ = unix.Rmdir(dir)
}

// unmountAll lazily unmounts everything stacked on p; missing is fine.
func unmountAll(p string) {
	for range 8 {
		err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil {
			return
		}
	}
}

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

// treeAttrs are the attributes of a cloned mount tree.
type treeAttrs struct {
	userns   *os.File // idmap the tree's top through this user namespace; nil: not idmapped
	readOnly bool
	noSuid   bool
	noDev    bool
}

// cloneTree clones the mount tree at dirfd/path (recursively, so submounts come along and
// nothing under them is uncovered) into a detached mount with attrs set. With path ""
// the tree is the one at dirfd (an O_PATH fd of a source resolved once). The caller closes
// the returned fd.
func cloneTree(dirfd int, path string, attrs treeAttrs) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}

	tree, err := unix.OpenTree(dirfd, path, uint(flags))
	if err != nil {
		return -1, fmt.Errorf("cloning mount: %w", err)
	}

	err = setTreeAttrs(tree, attrs)
	if err != nil {
		_ = unix.Close(tree)
		return -1, err
	}

	return tree, nil
}

func setTreeAttrs(tree int, attrs treeAttrs) error {
	var set uint64
	if attrs.readOnly {
		set |= unix.MOUNT_ATTR_RDONLY
	}

	if attrs.noSuid {
		set |= unix.MOUNT_ATTR_NOSUID
	}

	if attrs.noDev {
		set |= unix.MOUNT_ATTR_NODEV
	}

	if set != 0 {
		// Everywhere in the tree: a submount must not be the way around them.
		err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: set})
		if err != nil {
			return fmt.Errorf("setting mount attributes: %w", err)
		}
	}

	if attrs.userns != nil {
		// The idmap is set on the tree's top alone (a recursive idmap of submounts from
		// other filesystems may be refused).
		err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(attrs.userns.Fd())})
		if err != nil {
			return fmt.Errorf("idmapping mount: %w", err)
		}
	}

	return nil
}

// stageTree attaches a detached tree at dst, a host path the container's setup then binds
// from. The container's copy of a mount made before it started is locked: its root cannot
// remount it read-write, clear nosuid or nodev, or uncover it.
func stageTree(tree int, dst string) error {
	err := makeMountPoint(dst, tree)
	if err != nil {
		return err
	}

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("staging mount on %q: %w", dst, err)
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

// unstage lazily unmounts and removes a staging mount point; missing is fine. Only an
// empty directory or a file is removed, never a tree.
func unstage(dst string) {
	unmountAll(dst)
	_ = os.Remove(dst)
}

// hotAttach puts a detached tree on target inside the running container of r, through
// the container's hotplug directory so that its flags arrive locked. Missing mount points
// are created as the container's root (fsuid/fsgid of the throwaway thread): host root is
// not mapped in the container's own filesystems (its /dev tmpfs refuses it with
// EOVERFLOW) and would show as nobody elsewhere.
func (r *run) hotAttach(tree int, target string) error {
	var want unix.Stat_t

	err := unix.Fstat(tree, &want)
	if err != nil {
		return err
	}

	spotName := "." + randomHex(8)
	spot := filepath.Join(r.hotplug, spotName)
	err = makeMountPoint(spot, tree)
	if err != nil {
		return err
	}

	defer unstage(spot)

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, spot, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching mount in the hotplug directory: %w", err)
	}

	return inMountNS(r.initPID, func() error {
		// The propagated copy, found as host root before fsuid changes. Root inside may
		// have covered the directory with something of its own: the copy must be a mount
		// root of the very object attached above, or nothing is moved.
		how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(unix.AT_FDCWD, hotplugTarget+"/"+spotName, &how)
		if err != nil {
			return fmt.Errorf("finding the mount in the container's %s (was the container started before hotplug existed? restart it): %w", hotplugTarget, err)
		}

		defer func() { _ = unix.Close(fd) }()

		var got unix.Statx_t
		err = unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_INO, &got)
		if err != nil {
			return err
		}

		if got.Ino != want.Ino || unix.Mkdev(got.Dev_major, got.Dev_minor) != want.Dev || got.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
			return fmt.Errorf("the mount did not arrive in the container's %s", hotplugTarget)
		}

		_ = unix.Setfsuid(int(r.ids.HostUID))
		_ = unix.Setfsgid(int(r.ids.HostGID))

		rootFD, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the container's root: %w", err)
		}

		defer func() { _ = unix.Close(rootFD) }()

		return setup.AttachTree(rootFD, "/", fd, target)
	})
}

// hotMount attaches the host path src (a device node the daemon made) at target inside
// the running container, nosuid.
func (r *run) hotMount(src, target string) error {
	tree, err := cloneTree(unix.AT_FDCWD, src, treeAttrs{noSuid: true})
	if err != nil {
		return fmt.Errorf("%q: %w", src, err)
	}

	defer func() { _ = unix.Close(tree) }()

	return r.hotAttach(tree, target)
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
