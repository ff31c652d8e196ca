package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
)

// RefreshCopy brings the existing, stopped instance dst up to date with instance src on
// this server (lxc copy --refresh c1 c2): the snapshots dst lacks (or has from another
// moment under the same name) are copied, those src no longer has deleted, and dst's root
// replaced by a copy of src's, made in a temporary snapshot of dst and swapped in by the
// pool's restore, so a failure before the swap leaves dst as it was. dst's row (config,
// identity) stays; lxc updates its config afterwards. Both pools must be the same.
func (ct *Creator) RefreshCopy(ctx context.Context, src, dst string) error {
	if src == dst {
		return api.StatusErrorf(http.StatusBadRequest, "cannot refresh instance %q from itself", dst)
	}

	ctx, done := ct.host.track(ctx, src)
	defer done()

	ctx, done2 := ct.host.track(ctx, dst)
	defer done2()

	// Both locks, in name order: two refreshes each way cannot hold one each.
	first, second := src, dst
	if second < first {
		first, second = second, first
	}

	defer ct.host.lock(first)()
	defer ct.host.lock(second)()

	if ct.host.monitor(dst) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%w", ErrRefreshRunning)
	}

	srcInst, srcProfiles, err := ct.host.load(ctx, src)
	if err != nil {
		return err
	}

	dstInst, dstProfiles, err := ct.host.load(ctx, dst)
	if err != nil {
		return err
	}

	_, srcDevices := Expand(srcInst, srcProfiles)
	_, dstDevices := Expand(dstInst, dstProfiles)
	if ct.pools.nameOf(srcDevices) != ct.pools.nameOf(dstDevices) {
		return api.StatusErrorf(http.StatusBadRequest, "refreshing %q from %q on another storage pool is not supported", dst, src)
	}

	pool, err := ct.pools.of(dstDevices)
	if err != nil {
		return err
	}

	from, err := ct.host.idsOf(srcInst)
	if err != nil {
		return err
	}

	to, err := ct.host.idsOf(dstInst)
	if err != nil {
		return err
	}

	var srcSnaps, dstSnaps []db.Snapshot
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		srcSnaps, err = tx.GetInstanceSnapshots(ctx, src)
		if err == nil {
			dstSnaps, err = tx.GetInstanceSnapshots(ctx, dst)
		}

		return err
	})
	if err != nil {
		return err
	}

	have := map[string]db.Snapshot{}
	for _, s := range dstSnaps {
		have[s.Name] = s
	}

	keep := map[string]bool{}
	add := []db.Snapshot{}
	for _, s := range srcSnaps {
		keep[s.Name] = true
		if h, ok := have[s.Name]; !ok || !h.CreatedAt.Equal(s.CreatedAt) {
			add = append(add, s)
		}
	}

	rev := revert.New()
	defer rev.Fail()

	// The root first, into a temporary snapshot of dst (a copy of src's as of now).
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := storage.TempSnapshotPrefix + "refresh-" + hex.EncodeToString(b)
	err = ct.host.frozen(src, func() error { return pool.CreateSnapshot(ctx, src, tmp) })
	if err != nil {
		return fmt.Errorf("snapshotting %q: %w", src, err)
	}

	defer func() { _ = pool.DeleteSnapshot(src, tmp) }()
	err = pool.CopySnapshot(ctx, src, tmp, dst, tmp, from, to)
	if err != nil {
		return fmt.Errorf("copying the root of %q: %w", src, err)
	}

	defer func() { _ = pool.DeleteSnapshot(dst, tmp) }()

	// The snapshots: a replaced one leaves its name first (gone for good from here).
	for _, s := range add {
		if _, ok := have[s.Name]; ok {
			err := pool.DeleteSnapshot(dst, s.Name)
			if err != nil {
				return err
			}
		}

		err := pool.CopySnapshot(ctx, src, s.Name, dst, s.Name, from, to)
		if err != nil {
			return fmt.Errorf("copying snapshot %q of %q: %w", s.Name, src, err)
		}

		rev.Add(func() { _ = pool.DeleteSnapshot(dst, s.Name) })
	}

	err = pool.RestoreSnapshot(ctx, dst, tmp)
	if err != nil {
		return fmt.Errorf("swapping in the refreshed root of %q: %w", dst, err)
	}

	remove := []string{}
	for _, s := range dstSnaps {
		if !keep[s.Name] {
			remove = append(remove, s.Name)
		}
	}

	err = ct.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for _, s := range add {
			_, replaced := have[s.Name]
			if !replaced {
				continue
			}

			err := tx.DeleteInstanceSnapshot(ctx, dst, s.Name)
			if err != nil {
				return err
			}
		}

		for _, n := range remove {
			err := tx.DeleteInstanceSnapshot(ctx, dst, n)
			if err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
				return err
			}
		}

		for _, s := range add {
			s.Instance = dst
			s.Config = copyMap(s.Config)
			for k := range s.Config {
				// A snapshot's MAC addresses stay the source's; its identity becomes dst's.
				if strings.HasPrefix(k, "volatile.") && strings.HasSuffix(k, ".hwaddr") {
					delete(s.Config, k)
				}
			}

			for _, k := range []string{"volatile.uuid", "volatile.idmap.base", "volatile.idmap.next", "volatile.last_state.idmap"} {
				if v, ok := dstInst.Config[k]; ok {
					s.Config[k] = v
				}
			}

			if project.Of(src) != project.Of(dst) {
				s.Profiles = existingProfiles(ctx, tx, dst, project.ProfileNames(s.Profiles))
			}

			_, err := tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	rev.Success()
	for _, n := range remove {
		_ = pool.DeleteSnapshot(dst, n)
	}

	ct.host.event("instance-updated", dst, map[string]any{"refreshed": true, "source": src, "snapshots_added": len(add), "snapshots_deleted": len(remove)})
	return nil
}
