package snapshot

import (
	"context"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/expiry"
)

// CheckExpiry refuses a value of snapshots.expiry that is not an LXD expiry.
func CheckExpiry(v string) error { return expiry.Check(v) }

// defaultExpiry is when a snapshot taken now expires under the instance's
// snapshots.expiry (the zero time without one).
func (sn *Snapshots) defaultExpiry(inst *db.Instance, profiles map[string]*db.Profile) time.Time {
	config, _ := sn.host.Expand(inst, profiles)

	t, err := expiry.After(time.Now().UTC(), config["snapshots.expiry"])
	if err != nil {
		return time.Time{} // refused when it was set
	}

	return t
}

// PruneExpired deletes every snapshot of this member's instances whose expiry has passed
// by now, as LXD's daemon does each minute, and returns how many went. (Another
// member's snapshots are its own to prune: their storage is there.)
func (sn *Snapshots) PruneExpired(ctx context.Context, now time.Time) (int, error) {
	var snaps []db.Snapshot

	err := sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetExpiringSnapshots(ctx, sn.host.Member())
		return err
	})
	if err != nil {
		return 0, err
	}

	n := 0

	for _, s := range snaps {
		if s.ExpiresAt.IsZero() || s.ExpiresAt.After(now) {
			continue
		}

		err := sn.Delete(ctx, s.Instance, s.Name)
		if err != nil {
			sn.log.Warn("deleting an expired snapshot", "instance", s.Instance, "snapshot", s.Name, "err", err)
			continue
		}

		sn.log.Info("deleted an expired snapshot", "instance", s.Instance, "snapshot", s.Name, "expired", s.ExpiresAt)
		n++
	}

	return n, nil
}

// pruneInterval is how often expired snapshots are looked for, as LXD; one expiring
// sooner than that is pruned on time (RunPruner).
const pruneInterval = time.Minute

// RunPruner deletes expired snapshots every pruneInterval, and at the expiry of
// a snapshot taken with one nearer than that, until ctx ends.
func (sn *Snapshots) RunPruner(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()

	for {
		_, err := sn.PruneExpired(ctx, time.Now())
		if err != nil {
			sn.log.Warn("pruning expired snapshots", "err", err)
		}

		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sn.pruneKick:
		}
	}
}

// pruneAt makes the pruner run at t when that is sooner than its next round.
func (sn *Snapshots) pruneAt(t time.Time) {
	d := time.Until(t)
	if t.IsZero() || d > pruneInterval {
		return
	}

	time.AfterFunc(max(d, 0)+10*time.Millisecond, func() {
		select {
		case sn.pruneKick <- struct{}{}:
		default:
		}
	})
}
