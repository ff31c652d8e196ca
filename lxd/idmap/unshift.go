package idmap

import "encoding/binary"

// OverflowID is what a container sees for a host id outside its map.
const OverflowID = 65534

// ContainerOwner maps ids on disk (host ids) to the ids the container sees: what an
// image or backup made from its tree must record. Ids outside the map become OverflowID.
func (s Set) ContainerOwner(uid, gid int) (int, int) {
	cu, cg := int64(uid)-s.HostUID, int64(gid)-s.HostGID
	if cu < 0 || cu >= s.Size {
		cu = OverflowID
	}

	if cg < 0 || cg >= s.Size {
		cg = OverflowID
	}

	return int(cu), int(cg)
}

// UnshiftXattr rewrites the ids inside a capability or ACL xattr from host ids to the
// container's (other xattrs are returned as they are). A v3 capability whose rootid is
// the container's root becomes a plain v2 one, as images carry them; one that belongs to
// anybody else, or an ACL naming ids outside the map, is dropped (nil).
func (s Set) UnshiftXattr(name string, v []byte) []byte {
	switch name {
	case "security.capability":
		if len(v) == vfsCapSize3 && binary.LittleEndian.Uint32(v)&vfsCapRevisionMask == vfsCapRevision3 {
			if int64(binary.LittleEndian.Uint32(v[20:])) != s.HostUID {
				return nil
			}

			out := make([]byte, vfsCapSize2)
			binary.LittleEndian.PutUint32(out, vfsCapRevision2|binary.LittleEndian.Uint32(v)&vfsCapFlagsMask)
			copy(out[4:], v[4:20])
			return out
		}

		return v
	case "system.posix_acl_access", "system.posix_acl_default":
		out, err := shiftACLWith(inverse{s}, v)
		if err != nil {
			return nil
		}

		return out
	}

	return v
}

// inverse maps host ids of a set back to container ids (-1 outside).
type inverse struct{ s Set }

func (i inverse) UIDToHost(id int64) int64 {
	if id < i.s.HostUID || id >= i.s.HostUID+i.s.Size {
		return -1
	}

	return id - i.s.HostUID
}

func (i inverse) GIDToHost(id int64) int64 {
	if id < i.s.HostGID || id >= i.s.HostGID+i.s.Size {
		return -1
	}

	return id - i.s.HostGID
}

func (i inverse) shiftCapability(v []byte) ([]byte, error) { return v, nil }
func (i inverse) shiftACL(v []byte) ([]byte, error)        { return shiftACLWith(i, v) }
