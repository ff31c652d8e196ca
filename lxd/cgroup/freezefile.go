package cgroup

// FreezeFormat says how to read a FreezeStateFile.
type FreezeFormat uint32

const (
	// FreezeUnknown: the group has no file saying it; report it as not frozen.
	FreezeUnknown FreezeFormat = iota
	// FreezeEvents: cgroup2's cgroup.events, frozen when its "frozen" key is 1.
	FreezeEvents
	// FreezeV1: the v1 freezer's freezer.state, frozen when it reads FROZEN.
	FreezeV1
)

// FreezeStateFile names the file that tells whether g is frozen, and how to read
// it, for a reader without this package: the monitor's idle holder
// (lxd/nsexec/hold.c) answers state requests from it. It is the file Frozen reads.
func FreezeStateFile(g Group) (string, FreezeFormat) {
	switch g := g.(type) {
	case *v2Group:
		return g.dir + "/cgroup.events", FreezeEvents
	case *systemdGroup:
		return g.dir + "/cgroup.events", FreezeEvents
	case *v1Group:
		if g.unified != "" {
			return g.unified + "/cgroup.events", FreezeEvents
		}

		if d, ok := g.dirs["freezer"]; ok {
			return d + "/freezer.state", FreezeV1
		}
	}

	return "", FreezeUnknown
}
