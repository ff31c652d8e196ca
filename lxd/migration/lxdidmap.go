package migration

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// LastStateIDMapKey is LXD's record of the ids a tree is stored with on its disk.
const LastStateIDMapKey = "volatile.last_state.idmap"

// maxIDMapJSON bounds the LXD id map text a snapshot's config may carry.
const maxIDMapJSON = 64 << 10

// TreeIDMap is the id map of one tree of an LXD stream. LXD sends one header map (its
// instance's disk map) for all trees, but it shifts a stopped container's tree lazily
// (at its first start or file write) and never its snapshots: a snapshot taken before
// may still hold the container's own ids while the instance holds host ids. Its own
// volatile.last_state.idmap (in the snapshot's config) says which; "[]" is the
// container's ids. Without a header map (a Berth sender: container ids on the wire, its
// snapshots' keys name its own host ids) or without the key, the header's map holds.
func TreeIDMap(header []*IDMapType, snapConfig map[string]string) ([]*IDMapType, error) {
	raw, ok := snapConfig[LastStateIDMapKey]
	if !ok || len(header) == 0 {
		return header, nil
	}

	if len(raw) > maxIDMapJSON {
		return nil, fmt.Errorf("%s of %d bytes", LastStateIDMapKey, len(raw))
	}

	var entries []struct {
		Isuid, Isgid           bool
		Hostid, Nsid, Maprange int64
	}

	err := json.Unmarshal([]byte(raw), &entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", LastStateIDMapKey, err)
	}

	out := []*IDMapType{}
	for _, e := range entries {
		if e.Hostid < 0 || e.Nsid < 0 || e.Maprange <= 0 || e.Hostid > 1<<31-1 || e.Nsid > 1<<31-1 || e.Maprange > 1<<31-1 {
			return nil, fmt.Errorf("%s: invalid line %+v", LastStateIDMapKey, e)
		}

		out = append(out, &IDMapType{Isuid: proto.Bool(e.Isuid), Isgid: proto.Bool(e.Isgid),
			Hostid: proto.Int32(int32(e.Hostid)), Nsid: proto.Int32(int32(e.Nsid)), Maprange: proto.Int32(int32(e.Maprange))})
	}

	return out, nil
}
