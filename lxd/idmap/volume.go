package idmap

import (
	"fmt"
	"os"
	"syscall"
)

// VolumeBase is where custom storage volumes keep their owners on disk: container id k is
// stored as VolumeBase+k, whichever container wrote it. Volumes are container-neutral (any
// container they are attached to sees its own root as the owner of what root stored, with
// no chown), and nothing a container plants in one is owned by a host id that means
// anything: a setuid-root binary is stored setuid VolumeBase, not setuid 0. The block is
// the last 65536 ids below 2^31 (some tools mishandle ids above), far above the
// subordinate ranges Berth allocates containers from.
const VolumeBase = 0x7FFE0000 // 2147352576

// VolumeToHost maps a container id to the id a volume stores for it, -1 outside the block.
func VolumeToHost(id int64) int64 {
	if id < 0 || id >= DefaultSize {
		return -1
	}

	return VolumeBase + id
}

// VolumeUserns returns an fd of a fresh user namespace that idmaps a volume's mount for
// this container: the stored ids VolumeBase+k appear as the container's host ids
// HostUID+k. cleanup closes the fd. See Userns for how it is made.
func (s Set) VolumeUserns() (fd *os.File, cleanup func(), err error) {
	size := min(s.Size, DefaultSize)
	if size <= 0 {
		return nil, nil, fmt.Errorf("creating user namespace: empty id map")
	}

	return usernsWith(
		[]syscall.SysProcIDMap{{ContainerID: VolumeBase, HostID: int(s.HostUID), Size: int(size)}},
		[]syscall.SysProcIDMap{{ContainerID: VolumeBase, HostID: int(s.HostGID), Size: int(size)}},
	)
}
