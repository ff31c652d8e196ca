package instance

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/container"
)

// diskDevice binds a host path into the container (source, path, readonly), idmapped so
// that what host root owns, the container's root owns. The root disk (path "/") belongs
// to the storage pool and is left alone.
type diskDevice struct{}

func (diskDevice) validate(conf map[string]string) error {
	if conf["path"] == "/" {
		if conf["source"] != "" {
			return fmt.Errorf("the root disk cannot have a source")
		}

		return onlyKeys(conf, "path", "pool", "size")
	}

	err := onlyKeys(conf, "path", "source", "readonly", "required", "pool")
	if err != nil {
		return err
	}

	if conf["pool"] != "" {
		return fmt.Errorf("custom storage volumes (pool with path %q) are not supported; use a host path as source", conf["path"])
	}

	err = containerPath("path", conf["path"])
	if err != nil {
		return err
	}

	src := conf["source"]
	if src == "" || src[0] != '/' {
		return fmt.Errorf("\"source\" must be an absolute host path, not %q", src)
	}

	for _, k := range []string{"readonly", "required"} {
		err = isBool(conf[k])
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}

	return nil
}

func isRoot(conf map[string]string) bool { return conf["path"] == "/" }

// present checks the source; a missing optional source (required=false) is skipped.
func (diskDevice) present(conf map[string]string) (bool, error) {
	_, err := os.Stat(conf["source"])
	if err == nil {
		return true, nil
	}

	if errors.Is(err, os.ErrNotExist) && conf["required"] != "" && !IsTrue(conf["required"]) {
		return false, nil
	}

	return false, fmt.Errorf("source %q: %w", conf["source"], err)
}

func (d diskDevice) prepare(r *deviceRun) ([]container.Mount, error) {
	if isRoot(r.conf) {
		return nil, nil
	}

	ok, err := d.present(r.conf)
	if !ok || err != nil {
		return nil, err
	}

	stage := r.stagePath()
	unstage(stage) // a leftover of a crashed start
	err = stageIdmapped(r.conf["source"], stage, r.ids, IsTrue(r.conf["readonly"]))
	if errors.Is(err, unix.EINVAL) {
		// The source's filesystem cannot be idmapped: bind it as is, ids show unmapped.
		r.m.log.Warn("disk source cannot be idmapped, binding it unmapped", "instance", r.inst, "device", r.name, "err", err)
		err = stagePlain(r.conf["source"], stage, IsTrue(r.conf["readonly"]))
	}

	if err != nil {
		return nil, err
	}

	return []container.Mount{{Source: stage, Target: r.conf["path"]}}, nil
}

func stagePlain(src, dst string, readOnly bool) error {
	tree, err := detachedTree(src, nil, readOnly)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(tree) }()

	err = makeMountPoint(dst, tree)
	if err != nil {
		return err
	}

	return unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

func (diskDevice) started(*deviceRun) error { return nil }

func (d diskDevice) attach(r *deviceRun) error {
	if isRoot(r.conf) {
		return errRequiresRestart
	}

	ok, err := d.present(r.conf)
	if !ok || err != nil {
		return err
	}

	return hotMount(r.initPID, r.ids, r.conf["source"], r.conf["path"], true, IsTrue(r.conf["readonly"]))
}

func (diskDevice) detach(r *deviceRun) error {
	if isRoot(r.conf) {
		return errRequiresRestart
	}

	return hotUnmount(r.initPID, r.ids, r.conf["path"], false)
}
