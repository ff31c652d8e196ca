package confine

// The btrfs ioctls that make a subvolume (a new one, or a snapshot of one the caller
// owns). Any owner of a directory on btrfs may call them, through an idmapped mount too;
// the new subvolume has a quota group of its own, outside the limit of the subvolume it
// sits in, so a container could write past its root disk's or a custom volume's size
// without bound. They are denied with the default deny list (a container's systemd falls
// back to a plain directory).
const (
	btrfsIocSnapCreate     = 0x50009401 // _IOW(0x94, 1, struct btrfs_ioctl_vol_args)
	btrfsIocSubvolCreate   = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	btrfsIocSnapCreateV2   = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	btrfsIocSubvolCreateV2 = 0x50009418 // _IOW(0x94, 24, struct btrfs_ioctl_vol_args_v2)
)

// btrfsSubvolumeIoctls are the requests denied with the default deny list.
var btrfsSubvolumeIoctls = []uint32{btrfsIocSnapCreate, btrfsIocSubvolCreate, btrfsIocSnapCreateV2, btrfsIocSubvolCreateV2}
