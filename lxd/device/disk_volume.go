package device

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/validate"
)

// A disk with a pool and a source (not the root disk) attaches the custom volume source
// of that pool (lxd/volumes), as `lxc storage volume attach` writes it:
//   - the volume's directory is resolved by lxd/volumes beneath the pool's directory with
//     openat2 (no symlink followed, no mount crossed, nothing outside the pool), and the
//     mount is cloned from that one fd;
//   - nosuid and nodev on the whole tree, readonly if asked, locked in the container as
//     every disk is (mount.go);
//   - idmapped: the volume stores container-neutral ids (idmap.VolumeBase+k), and the
//     mount maps them onto this container's range through a user namespace made for it,
//     so the container sees its own root and users as owners with no chown, and what it
//     writes is stored neutral again for the next container;
//   - attached to one instance at a time unless the volume has security.shared=true.

// Volumes is what volume disks need of lxd/volumes.
type Volumes interface {
	// Open returns an O_PATH fd of the directory of volume name of instance key inst's
	// project (its own volumes, or the default project's), resolved safely in its pool.
	Open(ctx context.Context, inst, pool, name string) (int, error)
	// CheckAttach refuses attaching the volume to inst where sharing is not allowed, and
	// one inst's project has not (a 404, or a 403 for a restricted project without
	// volumes of its own).
	CheckAttach(ctx context.Context, inst, pool, name string) error
}

type volumesHolder struct{ v Volumes }

var volumes atomic.Pointer[volumesHolder]

// SetVolumes installs lxd/volumes for disks with a pool; without it they are refused.
func SetVolumes(v Volumes) { volumes.Store(&volumesHolder{v}) }

func volumeService() (Volumes, error) {
	h := volumes.Load()
	if h == nil || h.v == nil {
		return nil, errors.New("custom storage volumes are not available")
	}

	return h.v, nil
}

// isVolume says whether a disk attaches a custom volume.
func isVolume(conf map[string]string) bool { return conf["pool"] != "" && !IsRoot(conf) }

const volumeTimeout = 30 * time.Second

func validateVolume(conf map[string]string) error {
	err := onlyKeys(conf, "path", "source", "readonly", "required", "pool")
	if err != nil {
		return err
	}

	err = containerPath("path", conf["path"])
	if err != nil {
		return err
	}

	for _, k := range []string{"readonly", "required"} {
		err = validate.Bool(conf[k])
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}

	if conf["source"] == "" {
		return fmt.Errorf("a disk with a pool needs the volume's name as source")
	}

	// Whether the volume exists depends on the project of the instance or profile the
	// device is in: CheckVolumes (instance create and update) and the start check it.
	_, err = volumeService()
	return err
}

// CheckVolumes refuses the custom volumes of an instance's expanded devices that it may
// not attach (a volume another instance has, without security.shared).
func CheckVolumes(inst string, devices map[string]map[string]string) error {
	for _, conf := range devices {
		if conf["type"] != "disk" || !isVolume(conf) {
			continue
		}

		err := checkVolume(inst, conf)
		if err != nil {
			return err
		}
	}

	return nil
}

func checkVolume(inst string, conf map[string]string) error {
	v, err := volumeService()
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), volumeTimeout)
	defer cancel()

	return v.CheckAttach(ctx, inst, conf["pool"], conf["source"])
}

// volumeTree checks the volume may be attached to r's instance, resolves it and clones it
// as the container gets it (see above).
func volumeTree(r *run) (int, error) {
	err := checkVolume(r.inst, r.conf)
	if err != nil {
		return -1, err
	}

	v, err := volumeService()
	if err != nil {
		return -1, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), volumeTimeout)
	defer cancel()

	src, err := v.Open(ctx, r.inst, r.conf["pool"], r.conf["source"])
	if err != nil {
		return -1, fmt.Errorf("volume %q of pool %q: %w", r.conf["source"], r.conf["pool"], err)
	}

	defer func() { _ = unix.Close(src) }()

	ns, cleanup, err := r.ids.VolumeUserns()
	if err != nil {
		return -1, err
	}

	defer cleanup()

	attrs := treeAttrs{readOnly: validate.IsTrue(r.conf["readonly"]), noSuid: true, noDev: true, userns: ns}
	tree, err := cloneTree(src, "", attrs)
	if err != nil {
		return -1, fmt.Errorf("volume %q of pool %q: %w", r.conf["source"], r.conf["pool"], err)
	}

	return tree, nil
}
