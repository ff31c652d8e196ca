package volumes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Open resolves a volume's directory for a disk device, as an O_PATH fd the device's
// mount is cloned from. The path is resolved beneath the pool's directory without
// following any symlink, crossing any mount or leaving the pool (openat2 with
// RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV): whatever sits at custom/<name>
// in the pool, a symlink or a bind mount put there by anyone, cannot redirect the mount.
// A volume with no row is a 404 even if its directory is there. name is a volume of the
// project of instance key inst (KeyIn).
func (s *Service) Open(ctx context.Context, inst, pool, name string) (int, error) {
	name, err := s.KeyIn(ctx, project.Of(inst), name)
	if err != nil {
		return -1, err
	}

	if s.restoring(pool, name) {
		return -1, api.StatusErrorf(http.StatusConflict, "storage volume %q of pool %q is being restored from a snapshot: try again when it is done", name, pool)
	}

	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStorageVolume(ctx, pool, name)
		return err
	})
	if err != nil {
		return -1, err
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return -1, err
	}

	root, err := unix.Open(poolDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening pool %q: %w", pool, err)
	}

	defer func() { _ = unix.Close(root) }()

	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}

	var fd int
	for range 16 {
		fd, err = unix.Openat2(root, customDir+"/"+name, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}

	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOTDIR):
		return -1, api.StatusErrorf(http.StatusConflict, "storage volume %q of pool %q: its directory is not a plain directory of the pool (%v); refusing to mount it", name, pool, err)
	case err != nil:
		return -1, fmt.Errorf("opening storage volume %q of pool %q: %w", name, pool, err)
	}

	return fd, nil
}

// CheckAttach refuses attaching volume pool/name to instance inst while another instance
// has it attached, unless the volume has security.shared=true (as LXD: two writers of one
// filesystem must have agreed to it). name is a volume of inst's project (KeyIn): a 404
// when it has none of that name.
func (s *Service) CheckAttach(ctx context.Context, inst, pool, name string) error {
	name, err := s.KeyIn(ctx, project.Of(inst), name)
	if err != nil {
		return err
	}

	var others []string
	var shared bool
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		v, err := tx.GetStorageVolume(ctx, pool, name)
		if err != nil {
			return err
		}

		shared = validate.IsTrue(v.Config["security.shared"])
		u, err := attached(ctx, tx)
		if err != nil {
			return err
		}

		for _, n := range u.instances[key{pool, name}] {
			if n != inst {
				others = append(others, n)
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	if len(others) > 0 && !shared {
		slices.Sort(others)
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q of pool %q is already attached to %s; set security.shared=true on it to attach it to several instances", project.VolumeName(name), pool, strings.Join(others, ", "))
	}

	return nil
}
