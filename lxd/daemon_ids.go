package main

import (
	"fmt"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/instance"
)

// subordinateIDs reads root's subordinate id ranges, which every container's own block
// of ids comes from: appended when root has none (as LXD does), and widened, when berthd
// may tune the host, if they hold fewer than idmap.DensityRootCount ids.
func (d *Daemon) subordinateIDs(tune bool) (instance.IDRange, error) {
	const subuid, subgid = "/etc/subuid", "/etc/subgid"

	us, uc, gs, gc, err := idmap.EnsureRootRange(subuid, subgid)
	if err != nil {
		return instance.IDRange{}, fmt.Errorf("reading subordinate ids: %w", err)
	}

	if tune {
		widened, err := idmap.WidenRootRange(subuid, subgid, idmap.DensityRootCount)
		switch {
		case err != nil:
			d.log.Warn("root's subordinate id range stays small; fewer containers can be made", "err", err)
		case widened:
			d.log.Info("appended a larger root range to /etc/subuid and /etc/subgid: the one there held fewer than 1024 containers' ids", "ids", idmap.DefaultRootCount)

			// WidenRootRange promises the old uid-to-gid distance: a moved gid range
			// would move every existing container's gids, so check it once more.
			was := gs - us
			us, uc, gs, gc, err = idmap.EnsureRootRange(subuid, subgid)
			if err != nil {
				return instance.IDRange{}, fmt.Errorf("reading subordinate ids: %w", err)
			}

			if gs-us != was {
				return instance.IDRange{}, fmt.Errorf("root's subordinate gid range no longer sits at its uid range's distance (%d, was %d): every container's gids would move; fix /etc/subuid and /etc/subgid", gs-us, was)
			}
		}
	}

	// A container's gids sit at its uids' offset: ids are only given out where both
	// ranges have them.
	n := min(uc, gc)

	return instance.IDRange{UIDStart: us, UIDCount: n, GIDStart: gs, GIDCount: n}, nil
}
