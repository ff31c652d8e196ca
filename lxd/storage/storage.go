// Package storage stores images and instance root filesystems behind a small driver interface.
package storage

import (
	"context"

	"github.com/berth-dev/berth/lxd/idmap"
)

// Driver is one storage backend of a pool rooted at a directory
// ($BERTH_DIR/storage-pools/<pool>).
type Driver interface {
	// Name is the driver name as the API reports it ("dir", "overlay").
	Name() string

	// CreateImage makes image fp available for instance creation. unpack writes the
	// image's root filesystem, as in the tarball (root-owned), into rootfsDir.
	// A crash half-way leaves nothing that HasImage reports.
	CreateImage(fp string, unpack func(rootfsDir string) error) error
	HasImage(fp string) bool
	// DeleteImage removes image fp. Where instances or snapshots still sit on it (the
	// overlay's shared lower layer) it is released instead: it stays for them, is no
	// longer listed, and PruneBackupImages removes it once the last of them is gone;
	// CreateImage of the same fp adopts it again. A missing image is not an error.
	DeleteImage(fp string) error
	// ListImages lists the images CreateImage made and DeleteImage has not released
	// (not the imports' BackupImagePrefix ones), sorted.
	ListImages() ([]string, error)

	// CreateInstanceFromImage creates the instance's storage from image fp, owned so that
	// it appears root-owned inside a container using ids. It must be cheap (no full copy
	// where the driver can avoid it).
	CreateInstanceFromImage(name, fp string, ids idmap.Set) error
	DeleteInstance(name string) error
	// RenameInstance moves a stopped, unmounted instance to a new name.
	RenameInstance(oldName, newName string) error

	// MountInstance mounts the instance's root filesystem (idmapped where needed) and returns
	// its host path. Idempotent.
	MountInstance(name string, ids idmap.Set) (rootfs string, err error)
	// UnmountInstance undoes MountInstance. Idempotent.
	UnmountInstance(name string) error
	// CreateSnapshot copies the instance's current data as snapshot snap; it is complete on
	// disk before it appears under its name. The caller keeps the data still meanwhile (the
	// container frozen or stopped). The copy keeps holes, never opens anything but
	// directories and regular files, and stops (leaving nothing) when ctx is cancelled;
	// it counts into ctx's fstree.Progress. The same holds for the other copies below.
	CreateSnapshot(ctx context.Context, name, snap string) error
	// DeleteSnapshot removes a snapshot; a missing one is not an error.
	DeleteSnapshot(name, snap string) error
	RenameSnapshot(name, oldSnap, newSnap string) error
	// RestoreSnapshot replaces the data of a stopped, unmounted instance by the snapshot's.
	RestoreSnapshot(ctx context.Context, name, snap string) error
	// CopyInstance creates dst from src (or its snapshot srcSnap when not empty), moving
	// ownership from src's id range (from) to dst's (to).
	CopyInstance(ctx context.Context, src, srcSnap, dst string, from, to idmap.Set) error
	// CopySnapshot copies snapshot srcSnap of src as snapshot dstSnap of dst, remapped.
	CopySnapshot(ctx context.Context, src, srcSnap, dst, dstSnap string, from, to idmap.Set) error
	// CreateSnapshotFromImage makes snapshot snap of instance name from image fp, owned as
	// the instance (imports: each snapshot of a backup is unpacked as an image first).
	CreateSnapshotFromImage(name, snap, fp string, ids idmap.Set) error
	// InstanceImage returns the image an instance's storage sits on.
	InstanceImage(name string) (string, error)
	// PruneBackupImages removes the images no image record keeps (those of imports,
	// BackupImagePrefix, and released ones) once nothing uses them.
	PruneBackupImages()
	// MountSnapshot gives a read-only view of a snapshot's root filesystem owned as the
	// instance's (ids) until release is called.
	MountSnapshot(name, snap string, ids idmap.Set) (rootfs string, release func(), err error)

	// RootQuota returns nil when the pool can limit the root disk of instance name (""
	// asks about the pool alone), else a *QuotaError saying why, or another error.
	RootQuota(name string) error
	// SetRootQuota limits instance name's root disk to limit bytes; 0 removes the limit.
	// It works on running and stopped instances alike.
	SetRootQuota(name string, limit int64) error
	// RootUsage returns the bytes instance name's root disk uses; ErrNoUsage where the
	// pool does not account it.
	RootUsage(name string) (int64, error)

	// Mountpoints lists what MountInstance mounts, innermost first, so another process
	// (the monitor) can unmount them.
	Mountpoints(name string) []string
}
