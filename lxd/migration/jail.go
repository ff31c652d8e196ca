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
)

// jail is the root directory one rsync end runs in (chroot, in user, mount, network, IPC
// and UTS namespaces of its own): the host's /usr read-only (with the /bin, /lib...
// links or read-only binds beside it, and /etc/ld.so.cache), and the tree at /tree. The
// jail's own directories are host root's, which the user namespace does not map: nothing
// in it is writable but the tree.
type jail struct {
	root   string
	mounts []string // attached, in order
}

// jailTree is where the tree is in the jail.
const jailTree = "/tree"

// hostLinks are the top-level directories the jail takes from the host: a symlink on a
// merged-/usr host (copied as a symlink), else a read-only bind.
var hostLinks = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// newJail makes a jail in a fresh directory under base with tree at /tree: read-only for
// a sender; for a receiver (writeIDs non-nil) writable and idmapped by writeIDs, so that
// what the container's ids write lands on disk as the container's own ids (the pool
// image's format, 0 being its root).
func newJail(base, tree string, writeIDs *idmap.Set) (*jail, error) {
	err := os.MkdirAll(base, 0o700)
	if err != nil {
		return nil, err
	}

	root, err := os.MkdirTemp(base, "jail-")
	if err != nil {
		return nil, err
	}

	j := &jail{root: root}
	err = j.build(tree, writeIDs)
	if err != nil {
		j.close()
		return nil, err
	}

	return j, nil
}

func (j *jail) build(tree string, writeIDs *idmap.Set) error {
	err := os.Chmod(j.root, 0o755)
	if err != nil {
		return err
	}

	err = j.bind("/usr", "usr", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID, nil)
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
			err = j.bind(host, name, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID, nil)
			if err != nil {
				return err
			}
		}
	}

	// The dynamic loader's cache: without it, libraries in the multiarch directories may
	// not be found.
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		err = j.bind("/etc/ld.so.cache", "etc/ld.so.cache", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID, nil)
		if err != nil {
			return err
		}
	}

	attrs := uint64(unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC)
	if writeIDs == nil {
		return j.bind(tree, jailTree[1:], attrs|unix.MOUNT_ATTR_RDONLY, nil)
	}

	return j.bind(tree, jailTree[1:], attrs, writeIDs)
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

	for _, name := range append(append([]string{}, hostLinks...), "usr", "etc/ld.so.cache", "etc", "dev/null", "dev", jailTree[1:]) {
		_ = os.Remove(filepath.Join(j.root, name))
	}

	_ = os.Remove(j.root)
}

// command is rsync with args, to run in the jail as uid and gid 0 of m's user namespace,
// from /tree. It dies with its parent.
func (j *jail) command(ctx context.Context, m Mapping, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, rsyncPath, args...)
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
