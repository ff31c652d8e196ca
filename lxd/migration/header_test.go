package migration

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// TestHeaderWire pins the wire bytes of a small header against LXD's field numbers: a
// generated .proto that drifted would change them.
func TestHeaderWire(t *testing.T) {
	h := &MigrationHeader{Fs: MigrationFSType_RSYNC.Enum(), Criu: CRIUType_NONE.Enum(), IndexHeaderVersion: proto.Uint32(1)}
	data, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}

	// fs = 1 (varint 0), criu = 2 (varint 2), indexHeaderVersion = 13 (varint 1).
	want := []byte{0x08, 0x00, 0x10, 0x02, 0x68, 0x01}
	if !slices.Equal(data, want) {
		t.Fatalf("wire bytes %x, want %x", data, want)
	}

	c, _ := proto.Marshal(&MigrationControl{Success: proto.Bool(false), Message: proto.String("x")})
	if !slices.Equal(c, []byte{0x08, 0x00, 0x12, 0x01, 'x'}) {
		t.Fatalf("control bytes %x", c)
	}
}

func TestAnswer(t *testing.T) {
	snap := api.InstanceSnapshot{Name: "s0", Architecture: "x86_64", CreatedAt: time.Unix(1700000000, 0).UTC(),
		Config: map[string]string{"a": "b"}, Devices: map[string]map[string]string{"eth0": {"type": "nic"}}, Profiles: []string{"default"}}
	offer := Offer([]api.InstanceSnapshot{snap}, false)
	offer.RsyncFeatures.Compress = proto.Bool(true)
	a, err := Answer(offer)
	if err != nil {
		t.Fatal(err)
	}

	if got := FeatureNames(a.RsyncFeatures); !slices.Equal(got, []string{FeatureXattrs, FeatureDelete, FeatureBidirectional}) {
		t.Errorf("features %v", got)
	}

	if a.IndexHeaderVersion != nil {
		t.Errorf("index header answered without an offer")
	}

	back := SnapshotFromProto(a.Snapshots[0])
	if back.Name != "s0" || back.Architecture != "x86_64" || !back.CreatedAt.Equal(snap.CreatedAt) ||
		back.Config["a"] != "b" || back.Devices["eth0"]["type"] != "nic" || !back.ExpiresAt.IsZero() {
		t.Errorf("snapshot round trip: %+v", back)
	}

	offer.IndexHeaderVersion = proto.Uint32(7)
	a, _ = Answer(offer)
	if a.GetIndexHeaderVersion() != IndexHeaderVersion {
		t.Errorf("index header %d, want ours", a.GetIndexHeaderVersion())
	}

	live := Offer(nil, false)
	live.Criu = CRIUType_CRIU_RSYNC.Enum()
	if _, err := Answer(live); err == nil {
		t.Errorf("a live offer was accepted")
	}

	zfs := &MigrationHeader{Fs: MigrationFSType_ZFS.Enum()}
	if _, err := Answer(zfs); err == nil {
		t.Errorf("a zfs-only offer was accepted")
	}

	many := Offer(nil, false)
	many.SnapshotNames = make([]string, MaxSnapshots+1)
	if _, err := Answer(many); err == nil {
		t.Errorf("an offer of %d snapshots was accepted", MaxSnapshots+1)
	}
}

func TestReceiveMapping(t *testing.T) {
	ids := idmap.Set{HostUID: 2000000, HostGID: 3000000, Size: 65536}

	m, err := ReceiveMapping(ids, nil)
	if err != nil || m.UIDs[0].ContainerID != 0 || m.UIDs[0].HostID != 2000000 || len(m.usermapArgs()) != 0 {
		t.Fatalf("no map: %+v %v", m, err)
	}

	// LXD's: host ids 1000000.. are the container's 0.., for a billion ids.
	lxd := []*IDMapType{
		{Isuid: proto.Bool(true), Isgid: proto.Bool(false), Hostid: proto.Int32(1000000), Nsid: proto.Int32(0), Maprange: proto.Int32(1000000000)},
		{Isuid: proto.Bool(false), Isgid: proto.Bool(true), Hostid: proto.Int32(1000000), Nsid: proto.Int32(0), Maprange: proto.Int32(1000000000)},
	}
	m, err = ReceiveMapping(ids, lxd)
	if err != nil {
		t.Fatal(err)
	}

	// Wire 1000001.. → 2000001.. (65535 ids), wire root 1000000 → rsync's 0 → 2000000.
	if !slices.Contains(m.UIDs, sysMap(1000001, 2000001, 65535)) || !slices.Contains(m.UIDs, sysMap(0, 2000000, 1)) {
		t.Errorf("uid lines %+v", m.UIDs)
	}

	if !slices.Contains(m.GIDs, sysMap(0, 3000000, 1)) {
		t.Errorf("gid lines %+v", m.GIDs)
	}

	if got := m.usermapArgs(); !slices.Equal(got, []string{"--usermap=1000000:0", "--groupmap=1000000:0", "--filter=-x security.capability"}) {
		t.Errorf("usermap %v", got)
	}

	// A map that does not map the container's root, and one with overlapping lines.
	noRoot := []*IDMapType{{Isuid: proto.Bool(true), Isgid: proto.Bool(true), Hostid: proto.Int32(5), Nsid: proto.Int32(1), Maprange: proto.Int32(10)}}
	if _, err := ReceiveMapping(ids, noRoot); err == nil {
		t.Errorf("a map without the root was accepted")
	}

	overlapping := []*IDMapType{
		{Isuid: proto.Bool(true), Isgid: proto.Bool(true), Hostid: proto.Int32(0), Nsid: proto.Int32(0), Maprange: proto.Int32(100)},
		{Isuid: proto.Bool(true), Isgid: proto.Bool(true), Hostid: proto.Int32(50), Nsid: proto.Int32(200), Maprange: proto.Int32(100)},
	}
	if _, err := ReceiveMapping(ids, overlapping); err == nil {
		t.Errorf("overlapping lines were accepted")
	}
}

func sysMap(ns, host, n int) syscall.SysProcIDMap {
	return syscall.SysProcIDMap{ContainerID: ns, HostID: host, Size: n}
}

// A refresh's answer asks only for the snapshots the target lacks (or has under the same
// name from another moment) and says refresh, so the source sends those and the root.
func TestRefreshAnswer(t *testing.T) {
	offer := Offer([]api.InstanceSnapshot{
		{Name: "snap0", CreatedAt: time.Unix(100, 0)},
		{Name: "snap1", CreatedAt: time.Unix(200, 0)},
		{Name: "snap2", CreatedAt: time.Unix(300, 0)},
	}, false)
	answer, err := Answer(offer)
	if err != nil {
		t.Fatal(err)
	}

	RefreshAnswer(answer, map[string]int64{"snap0": 100, "snap1": 199, "old": 50})
	got := []string{}
	for _, s := range answer.GetSnapshots() {
		got = append(got, s.GetName())
	}

	if strings.Join(answer.GetSnapshotNames(), ",") != "snap1,snap2" || strings.Join(got, ",") != "snap1,snap2" || !answer.GetRefresh() {
		t.Fatalf("refresh answer: names %v, snapshots %v, refresh %v; want snap1,snap2 and refresh", answer.GetSnapshotNames(), got, answer.GetRefresh())
	}
}
