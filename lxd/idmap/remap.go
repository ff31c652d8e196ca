package idmap

import (
	"context"
	"encoding/binary"
	"fmt"
)

// mapper moves owners, and the ids inside capability and ACL xattrs, during a copy.
type mapper interface {
	UIDToHost(id int64) int64
	GIDToHost(id int64) int64
	shiftCapability(v []byte) ([]byte, error)
	shiftACL(v []byte) ([]byte, error)
}

// CopyRemapped copies the tree at src, owned by the host ids of from, to dst (which must
// not exist), owned by the same container ids in to: host uid from.HostUID+u becomes
// to.HostUID+u. Ids outside from's range (the host-root whiteouts overlayfs makes in an
// upper layer, overflow ids) are kept as they are, so the copy is as faithful as the
// source. Everything else is as for CopyShifted.
func CopyRemapped(ctx context.Context, src, dst string, from, to Set) error {
	return copyTree(ctx, src, dst, remap{from: from, to: to})
}

// CopyExact copies the tree at src to dst keeping every owner, mode, xattr and hard link.
func CopyExact(ctx context.Context, src, dst string) error {
	all := Set{Size: 1 << 32}
	return copyTree(ctx, src, dst, remap{from: all, to: all})
}

type remap struct{ from, to Set }

func (r remap) UIDToHost(id int64) int64 {
	if id < r.from.HostUID || id >= r.from.HostUID+r.from.Size {
		return id
	}

	return r.to.HostUID + id - r.from.HostUID
}

func (r remap) GIDToHost(id int64) int64 {
	if id < r.from.HostGID || id >= r.from.HostGID+r.from.Size {
		return id
	}

	return r.to.HostGID + id - r.from.HostGID
}

// shiftCapability moves a v3 capability's rootid; a v2 one (valid for host root only)
// is kept.
func (r remap) shiftCapability(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("capability of %d bytes", len(v))
	}

	magic := binary.LittleEndian.Uint32(v)
	if magic&vfsCapRevisionMask != vfsCapRevision3 || len(v) != vfsCapSize3 {
		return v, nil
	}

	out := make([]byte, len(v))
	copy(out, v)
	rootid := int64(binary.LittleEndian.Uint32(v[20:]))
	binary.LittleEndian.PutUint32(out[20:], uint32(r.UIDToHost(rootid)))

	return out, nil
}

func (r remap) shiftACL(v []byte) ([]byte, error) {
	return shiftACLWith(r, v)
}
