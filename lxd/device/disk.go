package device

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
	"github.com/berth-dev/berth/shared/validate"
)

// diskDevice binds a host path into the container (source, path, readonly, shift), as LXD
// does for containers:
//   - not idmapped unless shift=true: the container sees the source's ids unmapped (host
//     root's files as nobody) and its root writes there as its own host uid, so nothing
//     it leaves in the share is host root's; shift=true idmaps the share through the
//     container's map (its root is host root on the source: for trusted containers only);
//   - always nosuid and nodev, on every mount of the tree;
//   - the source resolved once, without following any symlink (disk_source.go), and the
//     mount cloned from that fd, so nobody can swap a symlink in to redirect it;
//   - locked: the container's copy arrives by copy or propagation across the user
//     namespace boundary (mount.go), so readonly, nosuid and nodev cannot be
//     cleared from inside, at start and on hotplug alike.
//
// The root disk (path "/") belongs to the storage pool and is left alone. A disk with a
// pool and a source attaches a custom volume (disk_volume.go).
type diskDevice struct{}

func (diskDevice) validate(conf map[string]string) error {
	if conf["path"] == "/" {
		if conf["source"] != "" {
			return fmt.Errorf("the root disk cannot have a source")
		}

		return onlyKeys(conf, "path", "pool", "size")
	}

	if isVolume(conf) {
		return validateVolume(conf)
	}

	err := onlyKeys(conf, "path", "source", "readonly", "required", "pool", "shift")
	if err != nil {
		return err
	}

	err = containerPath("path", conf["path"])
	if err != nil {
		return err
	}

	for _, k := range []string{"readonly", "required", "shift"} {
		err = validate.Bool(conf[k])
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}

	fd, err := openDiskSource(conf)
	if err != nil {
		return err
	}

	if fd >= 0 {
		_ = unix.Close(fd)
	}

	return nil
}

// IsRoot says whether a disk device is the instance's root disk (path "/"), which belongs
// to the storage pool.
func IsRoot(conf map[string]string) bool { return conf["path"] == "/" }

// optional says whether a missing source or host device is skipped (required=false)
// rather than an error.
func optional(conf map[string]string) bool {
	return conf["required"] != "" && !validate.IsTrue(conf["required"])
}

// tree resolves the source once and clones it as the container gets it. It returns -1
// and no error for a missing optional source. userns is the user namespace to idmap
// through with shift=true.
func (diskDevice) tree(conf map[string]string, userns func() (*os.File, func(), error)) (int, error) {
	src, err := openDiskSource(conf)
	if src < 0 || err != nil {
		return -1, err
	}

	defer func() { _ = unix.Close(src) }()

	attrs := treeAttrs{readOnly: validate.IsTrue(conf["readonly"]), noSuid: true, noDev: true}
	if validate.IsTrue(conf["shift"]) {
		ns, cleanup, err := userns()
		if err != nil {
			return -1, err
		}

		defer cleanup()
		attrs.userns = ns
	}

	tree, err := cloneTree(src, "", attrs)
	if errors.Is(err, unix.EINVAL) && attrs.userns != nil {
		return -1, fmt.Errorf("source %q: shift=true, but its filesystem cannot be idmapped: %w", conf["source"], err)
	}

	if err != nil {
		return -1, fmt.Errorf("source %q: %w", conf["source"], err)
	}

	return tree, nil
}

func (d diskDevice) prepare(r *run) ([]setup.Mount, error) {
	if IsRoot(r.conf) {
		return nil, nil
	}

	var tree int
	var err error
	if isVolume(r.conf) {
		tree, err = volumeTree(r)
	} else {
		tree, err = d.tree(r.conf, r.ids.Userns)
	}

	if tree < 0 || err != nil {
		return nil, err
	}

	defer func() { _ = unix.Close(tree) }()

	stage := r.stagePath()
	unstage(stage) // a leftover of a crashed start
	err = stageTree(tree, stage)
	if err != nil {
		return nil, err
	}

	return []setup.Mount{{Source: stage, Target: r.conf["path"]}}, nil
}

func (diskDevice) started(*run) error { return nil }

func (d diskDevice) attach(r *run) error {
	if IsRoot(r.conf) {
		return errRequiresRestart
	}

	// shift=true idmaps through the running container's own user namespace.
	userns := func() (*os.File, func(), error) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", r.initPID))
		if err != nil {
			return nil, nil, fmt.Errorf("opening user namespace of %d: %w", r.initPID, err)
		}

		return f, func() { _ = f.Close() }, nil
	}

	var tree int
	var err error
	if isVolume(r.conf) {
		tree, err = volumeTree(r)
	} else {
		tree, err = d.tree(r.conf, userns)
	}

	if tree < 0 || err != nil {
		return err
	}

	defer func() { _ = unix.Close(tree) }()

	return r.hotAttach(tree, r.conf["path"])
}

func (diskDevice) detach(r *run) error {
	if IsRoot(r.conf) {
		return errRequiresRestart
	}

	return hotUnmount(r.initPID, r.ids, r.conf["path"], false)
}
