package migration

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/shared/api"
)

// IndexHeaderVersion is the newest index frame this side speaks (see doc.go).
const IndexHeaderVersion uint32 = 1

// Rsync features by their names in LXD's headers.
const (
	FeatureXattrs        = "xattrs"
	FeatureDelete        = "delete"
	FeatureCompress      = "compress"
	FeatureBidirectional = "bidirectional"
)

// ourFeatures are the rsync features Berth offers and accepts. compress is left out: on
// the links migrations use, rsync's zlib costs more time than it saves.
var ourFeatures = []string{FeatureXattrs, FeatureDelete, FeatureBidirectional}

// Offer is the source's header: an rsync transfer with its snapshots (oldest first).
// running says the instance runs and is copied as of now, without its state (LXD sends
// CRIU type NONE then). No id map: the tree goes on the wire as the container sees it.
func Offer(snapshots []api.InstanceSnapshot, running bool) *MigrationHeader {
	h := &MigrationHeader{Fs: MigrationFSType_RSYNC.Enum(), RsyncFeatures: features(ourFeatures)}
	if running {
		h.Criu = CRIUType_NONE.Enum()
	}

	for _, s := range snapshots {
		h.SnapshotNames = append(h.SnapshotNames, s.Name)
		h.Snapshots = append(h.Snapshots, SnapshotToProto(s))
	}

	return h
}

// Answer is the target's header for offer: rsync with the features both sides have, the
// snapshots it will receive, the index frame version it reads (or none if not offered).
// An offer Berth cannot take (another filesystem type without rsync, a live migration,
// too many snapshots) is an error naming why.
func Answer(offer *MigrationHeader) (*MigrationHeader, error) {
	if offer.Fs == nil {
		return nil, fmt.Errorf("migration header has no filesystem type")
	}

	if offer.GetFs() != MigrationFSType_RSYNC && offer.RsyncFeatures == nil {
		return nil, fmt.Errorf("migration filesystem type %s is not supported (rsync only)", offer.GetFs())
	}

	if offer.Criu != nil && offer.GetCriu() != CRIUType_NONE {
		return nil, fmt.Errorf("live migration (CRIU) is not supported: stop the instance or copy it with --stateless")
	}

	if len(offer.Snapshots) > MaxSnapshots || len(offer.SnapshotNames) > MaxSnapshots {
		return nil, fmt.Errorf("migration header lists more than %d snapshots", MaxSnapshots)
	}

	common := []string{}
	offered := FeatureNames(offer.RsyncFeatures)
	for _, f := range ourFeatures {
		if slices.Contains(offered, f) {
			common = append(common, f)
		}
	}

	a := &MigrationHeader{
		Fs:            MigrationFSType_RSYNC.Enum(),
		RsyncFeatures: features(common),
		SnapshotNames: offer.SnapshotNames,
		Snapshots:     offer.Snapshots,
		Refresh:       proto.Bool(false),
	}
	if offer.Criu != nil {
		a.Criu = offer.Criu
	}

	if v := offer.GetIndexHeaderVersion(); v > 0 {
		a.IndexHeaderVersion = proto.Uint32(min(v, IndexHeaderVersion))
	}

	return a, nil
}

// RefreshAnswer turns answer into a refresh's (LXD's container_incremental_copy): of the
// offered snapshots it keeps those the target lacks, by name, or has with another
// creation date (a different snapshot of the same name, which the target replaces), and
// says refresh, so that the source sends only those, then the instance's tree. have maps
// the target's snapshots to their creation dates (Unix seconds, as the header carries
// them).
func RefreshAnswer(answer *MigrationHeader, have map[string]int64) {
	names := []string{}
	snaps := []*Snapshot{}
	for _, s := range answer.GetSnapshots() {
		created, ok := have[s.GetName()]
		if ok && created == s.GetCreationDate() {
			continue
		}

		names = append(names, s.GetName())
		snaps = append(snaps, s)
	}

	answer.SnapshotNames = names
	answer.Snapshots = snaps
	answer.Refresh = proto.Bool(true)
}

// FeatureNames lists the features a header's rsyncFeatures set.
func FeatureNames(f *RsyncFeatures) []string {
	out := []string{}
	if f.GetXattrs() {
		out = append(out, FeatureXattrs)
	}

	if f.GetDelete() {
		out = append(out, FeatureDelete)
	}

	if f.GetCompress() {
		out = append(out, FeatureCompress)
	}

	if f.GetBidirectional() {
		out = append(out, FeatureBidirectional)
	}

	return out
}

// SendFeatures are the rsync features a source uses after answer: those it names, or
// LXD 3.7's fixed set from a target that does not know bidirectional (as LXD does).
func SendFeatures(answer *MigrationHeader) []string {
	f := FeatureNames(answer.RsyncFeatures)
	if !slices.Contains(f, FeatureBidirectional) {
		return []string{FeatureXattrs, FeatureDelete, FeatureCompress}
	}

	return f
}

func features(names []string) *RsyncFeatures {
	return &RsyncFeatures{
		Xattrs:        proto.Bool(slices.Contains(names, FeatureXattrs)),
		Delete:        proto.Bool(slices.Contains(names, FeatureDelete)),
		Compress:      proto.Bool(slices.Contains(names, FeatureCompress)),
		Bidirectional: proto.Bool(slices.Contains(names, FeatureBidirectional)),
	}
}

// LXD's architecture numbers (shared/osarch), as the header carries them.
var architectures = map[string]int32{
	"i686": 1, "x86_64": 2, "armv7l": 3, "aarch64": 4, "ppc": 5, "ppc64": 6, "ppc64le": 7,
	"s390x": 8, "mips": 9, "mips64": 10, "riscv32": 11, "riscv64": 12,
}

// SnapshotToProto is a snapshot as the header describes it.
func SnapshotToProto(s api.InstanceSnapshot) *Snapshot {
	p := &Snapshot{
		Name:         proto.String(s.Name),
		Profiles:     slices.Clone(s.Profiles),
		Ephemeral:    proto.Bool(s.Ephemeral),
		Architecture: proto.Int32(architectures[s.Architecture]),
		Stateful:     proto.Bool(false),
		CreationDate: proto.Int64(s.CreatedAt.Unix()),
		LastUsedDate: proto.Int64(s.LastUsedAt.Unix()),
		ExpiryDate:   proto.Int64(s.ExpiresAt.Unix()),
	}
	// Unset times go as Go's zero time's Unix value, as LXD sends them.
	for _, k := range slices.Sorted(maps.Keys(s.Config)) {
		v := s.Config[k]
		if k == LastStateIDMapKey {
			v = "[]" // the tree goes as the container's ids: an LXD target stores it so
		}

		p.LocalConfig = append(p.LocalConfig, &Config{Key: proto.String(k), Value: proto.String(v)})
	}

	for _, name := range slices.Sorted(maps.Keys(s.Devices)) {
		d := &Device{Name: proto.String(name)}
		for _, k := range slices.Sorted(maps.Keys(s.Devices[name])) {
			d.Config = append(d.Config, &Config{Key: proto.String(k), Value: proto.String(s.Devices[name][k])})
		}

		p.LocalDevices = append(p.LocalDevices, d)
	}

	return p
}

// SnapshotFromProto is the snapshot a header describes. Its config and devices are
// still to be checked by the caller.
func SnapshotFromProto(p *Snapshot) api.InstanceSnapshot {
	s := api.InstanceSnapshot{
		Name:      p.GetName(),
		Profiles:  slices.Clone(p.GetProfiles()),
		Ephemeral: p.GetEphemeral(),
		Config:    map[string]string{},
		Devices:   map[string]map[string]string{},
	}
	if s.Profiles == nil {
		s.Profiles = []string{}
	}

	for name, n := range architectures {
		if n == p.GetArchitecture() {
			s.Architecture = name
		}
	}

	if t := p.GetCreationDate(); t > 0 {
		s.CreatedAt = time.Unix(t, 0).UTC()
	}

	if t := p.GetExpiryDate(); t > 0 {
		s.ExpiresAt = time.Unix(t, 0).UTC()
	}

	for _, c := range p.GetLocalConfig() {
		s.Config[c.GetKey()] = c.GetValue()
	}

	for _, d := range p.GetLocalDevices() {
		dev := map[string]string{}
		for _, c := range d.GetConfig() {
			dev[c.GetKey()] = c.GetValue()
		}

		s.Devices[d.GetName()] = dev
	}

	return s
}
