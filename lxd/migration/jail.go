package migration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/mountinfo"
)

// jail is the root directory one rsync end runs in (chroot, in user, mount, network, IPC
// and UTS namespaces of its own): the host's /usr read-only (with the /bin, /lib...
// links or read-only binds beside it, and /etc/ld.so.cache), and the tree at /tree. The
// jail's own directories are host root's, which the user namespace does not map: nothing
// in it is writable but the tree.
type jail struct {
	root   string
	mounts []string // attached, in order
	made   []string // mount points made, in order
}

// jailTree is where the tree is in the jail.
const jailTree = "/tree"

// hostLinks are the top-level directories the jail takes from the host: a symlink on a
// merged-/usr host (copied as a symlink), else a read-only bind.
var hostLinks = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// newJail makes a jail in a fresh directory under base, without its tree: the caller
// binds it (bindTree, or bind on paths under tree/).
func newJail(base string) (*jail, error) {
	err := os.MkdirAll(base, 0o700)
	if err != nil {
		return nil, err
	}

	root, err := os.MkdirTemp(base, "jail-")
	if err != nil {
		return nil, err
	}

	j := &jail{root: root}
	err = j.build()
	if err != nil {
		j.close()
		return nil, err
	}

	return j, nil
}

// readOnly are the attributes of everything the jail takes from the host.
const readOnly = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID

func (j *jail) build() error {
	err := os.Chmod(j.root, 0o755)
	if err != nil {
		return err
	}

	err = j.bind("/usr", "usr", readOnly, nil)
	if err != nil {
		return err
	}

	for _, name := range hostLinks {
		host := "/" + name
		fi, err := os.Lstat(host)
		if err != nil {
			continue
		}

		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(host)
			if err != nil {
				return err
			}

			err = os.Symlink(target, filepath.Join(j.root, name))
			if err != nil {
				return err
			}

			continue
		}

		if fi.IsDir() {
			err = j.bind(host, name, readOnly, nil)
			if err != nil {
				return err
			}
		}
	}

	// The dynamic loader's cache: without it, libraries in the multiarch directories may
	// not be found.
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		err = j.bind("/etc/ld.so.cache", "etc/ld.so.cache", readOnly, nil)
		if err != nil {
			return err
		}
	}

	return nil
}

// treeAttrs are the attributes of a tree in the jail: nothing in it runs or opens a device.
const treeAttrs = unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC

// bindTarget attaches dir on /tree writable, idmapped by ids, so that what the
// container's ids write lands on disk as the container's own ids (the pool image's
// format, 0 being its root).
func (j *jail) bindTarget(dir string, ids idmap.Set) error {
	return j.bind(dir, jailTree[1:], treeAttrs, &ids)
}

// bindSource makes /tree the volume LXD sends: rootfs/ (read-only) and, from metaDir,
// metadata.yaml and templates/ (read-only) when they exist.
func (j *jail) bindSource(rootfs, metaDir string) error {
	err := os.Mkdir(filepath.Join(j.root, jailTree[1:]), 0o755)
	if err != nil {
		return err
	}

	err = j.bind(rootfs, jailTree[1:]+"/rootfs", treeAttrs|unix.MOUNT_ATTR_RDONLY, nil)
	if err != nil {
		return err
	}

	if metaDir == "" {
		return nil
	}

	for _, name := range []string{"metadata.yaml", "templates"} {
		if _, err := os.Lstat(filepath.Join(metaDir, name)); err != nil {
			continue
		}

		err = j.bind(filepath.Join(metaDir, name), jailTree[1:]+"/"+name, treeAttrs|unix.MOUNT_ATTR_RDONLY, nil)
		if err != nil {
			return err
		}
	}

	return nil
}

// bind attaches a copy of the mount tree at src on rel in the jail, with attrs (and
// idmapped by ids when set).
func (j *jail) bind(src, rel string, attrs uint64, ids *idmap.Set) error {
	dst := filepath.Join(j.root, rel)
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}

	err = os.MkdirAll(filepath.Dir(dst), 0o755)
	if err != nil {
		return err
	}

	j.made = append(j.made, dst)

	if fi.IsDir() {
		err = os.Mkdir(dst, 0o755)
	} else {
		err = os.WriteFile(dst, nil, 0o644)
	}

	if err != nil {
		return err
	}

	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("cloning mount of %q: %w", src, err)
	}

	defer func() { _ = unix.Close(tree) }()

	attr := unix.MountAttr{Attr_set: attrs}
	if ids != nil {
		userns, cleanup, err := ids.Userns()
		if err != nil {
			return err
		}

		defer cleanup()
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns.Fd())
	}

	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr)
	if err != nil {
		return fmt.Errorf("setting attributes of mount of %q: %w", src, err)
	}

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching %q in the migration jail: %w", src, err)
	}

	j.mounts = append(j.mounts, dst)
	return nil
}

// close detaches the jail's mounts and removes its directories: entry by entry, never
// recursively, so that a mount that would not go keeps what is under it.
func (j *jail) close() {
	for i := len(j.mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(j.mounts[i], unix.MNT_DETACH)
	}

	for i := len(j.made) - 1; i >= 0; i-- {
		_ = os.Remove(j.made[i])
	}

	for _, name := range append(append([]string{}, hostLinks...), "etc", "dev", jailTree[1:], jailBasis[1:]) {
		_ = os.Remove(filepath.Join(j.root, name))
	}

	_ = os.Remove(j.root)
}

// command is rsync with args, to run in the jail as uid and gid 0 of m's user namespace,
// from /tree. It dies with its parent.
func (j *jail) command(ctx context.Context, m Mapping, args ...string) *exec.Cmd {
	return j.commandOf(ctx, m, rsyncPath, args...)
}

// jailCaps are the only capabilities (of its own user namespace) a program in the jail
// keeps: those rsync needs to write owners, modes and file capabilities, and to read the
// tree. Without CAP_SYS_CHROOT and CAP_SYS_ADMIN a program taken over by a hostile peer
// (an rsync protocol bug) cannot leave the chroot (chroot into a subdirectory, then ".."
// from the old working directory) into the copy of the host's mount namespace, nor
// change mounts; no_new_privs keeps it so across execs.
var jailCaps = []string{"--bounding-set=-all,+chown,+dac_override,+dac_read_search,+fowner,+fsetid,+setfcap,+mknod", "--no-new-privs", "--"}

// setprivPath is util-linux's setpriv, on the host and in the jail (under /usr).
const setprivPath = "/usr/bin/setpriv"

// commandOf is program path with args in the jail, with jailCaps alone.
func (j *jail) commandOf(ctx context.Context, m Mapping, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, setprivPath, append(append(append([]string{}, jailCaps...), path), args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.Dir = jailTree
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		UidMappings:                m.UIDs,
		GidMappings:                m.GIDs,
		GidMappingsEnableSetgroups: true,
		// Dropping host root's supplementary groups too: none of them is in the map.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		Chroot:     j.root,
		Pdeathsig:  syscall.SIGKILL,
	}
	cmd.WaitDelay = 5 * time.Second

	return cmd
}

// rsyncPath is rsync on the host and in the jail (under the read-only /usr).
const rsyncPath = "/usr/bin/rsync"

// errNoRsync is a host without rsync.
var errNoRsync = errors.New("rsync is not installed (apt-get install rsync)")

// CleanJails removes the jails a killed daemon left under base: their mounts detached
// (deepest first), their directories removed one by one. Called at start, before any
// migration runs.
func CleanJails(base string) error {
	entries, err := os.ReadDir(base)
	if os.IsNotExist(err) {
		return nil
	}

	if err != nil {
		return err
	}

	mounts, err := mountinfo.Self()
	if err != nil {
		return err
	}

	for _, e := range entries {
		root := filepath.Join(base, e.Name())
		under := mountinfo.Under(mounts, root)
		for i := len(under) - 1; i >= 0; i-- {
			_ = unix.Unmount(under[i], unix.MNT_DETACH)
		}

		j := &jail{root: root}
		for _, rel := range []string{"usr", "etc/ld.so.cache", "dev/null", "tree/rootfs", "tree/metadata.yaml", "tree/templates", "basis"} {
			_ = os.Remove(filepath.Join(root, rel))
		}

		for _, name := range hostLinks {
			_ = os.Remove(filepath.Join(root, name))
		}

		j.close()
	}

	return nil
}
