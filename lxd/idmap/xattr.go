package idmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Layouts from linux/capability.h and linux/posix_acl_xattr.h.
const (
	vfsCapRevisionMask = 0xFF000000
	vfsCapRevision2    = 0x02000000
	vfsCapRevision3    = 0x03000000
	vfsCapFlagsMask    = 0x00FFFFFF
	vfsCapSize2        = 20
	vfsCapSize3        = 24

	aclVersion    = 2
	aclHeaderSize = 4
	aclEntrySize  = 8
	aclTagUser    = 0x02
	aclTagGroup   = 0x08
)

// shiftCapability turns a v2 or v3 file capability into a v3 one whose rootid is the
// container root's host uid, so the kernel honours it only inside the container.
func (s Set) shiftCapability(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("capability of %d bytes", len(v))
	}

	magic := binary.LittleEndian.Uint32(v)

	var rootid int64
	switch {
	case magic&vfsCapRevisionMask == vfsCapRevision2 && len(v) == vfsCapSize2:
		rootid = 0
	case magic&vfsCapRevisionMask == vfsCapRevision3 && len(v) == vfsCapSize3:
		rootid = int64(binary.LittleEndian.Uint32(v[20:]))
	default:
		return nil, fmt.Errorf("unsupported capability revision %#x (%d bytes)", magic&vfsCapRevisionMask, len(v))
	}

	host := s.UIDToHost(rootid)
	if host < 0 {
		return nil, fmt.Errorf("capability rootid %d outside the map", rootid)
	}

	out := make([]byte, vfsCapSize3)
	binary.LittleEndian.PutUint32(out, vfsCapRevision3|magic&vfsCapFlagsMask)
	copy(out[4:20], v[4:20])
	binary.LittleEndian.PutUint32(out[20:], uint32(host))

	return out, nil
}

// shiftACL shifts the ids of named user and group entries of a POSIX ACL xattr.
func (s Set) shiftACL(v []byte) ([]byte, error) {
	return shiftACLWith(s, v)
}

func shiftACLWith(s mapper, v []byte) ([]byte, error) {
	if len(v) < aclHeaderSize || (len(v)-aclHeaderSize)%aclEntrySize != 0 {
		return nil, fmt.Errorf("ACL of %d bytes", len(v))
	}

	if binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, fmt.Errorf("ACL version %d", binary.LittleEndian.Uint32(v))
	}

	out := bytes.Clone(v)
	for off := aclHeaderSize; off < len(out); off += aclEntrySize {
		tag := binary.LittleEndian.Uint16(out[off:])
		id := int64(binary.LittleEndian.Uint32(out[off+4:]))

		var host int64
		switch tag {
		case aclTagUser:
			host = s.UIDToHost(id)
		case aclTagGroup:
			host = s.GIDToHost(id)
		default:
			continue
		}

		if host < 0 {
			return nil, fmt.Errorf("ACL id %d outside the map", id)
		}

		binary.LittleEndian.PutUint32(out[off+4:], uint32(host))
	}

	return out, nil
}

// getXattr reads one xattr of path without following a symlink.
func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}

		if err != nil {
			return nil, fmt.Errorf("reading %s of %q: %w", name, path, err)
		}

		return buf[:n], nil
	}
}
