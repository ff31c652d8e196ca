package instance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/atomicfile"
	"github.com/berth-dev/berth/shared/project"
)

// A move between cluster members (lxc move c1 --target m2, evacuation in migrate mode)
// keeps the instance one row: the source member sends its trees (MoveOut, under the
// instance lock) to the target member, which makes its storage from them (CreateFromTrees
// with a MemberMove) and then, in one transaction, points the existing row at itself
// (db.MoveInstanceToMember). Until that transaction the instance is the source's, whole;
// after it, the target's. The source removes its copy last.
//
// Each side marks the instance directory while the move runs (.moving-member). After a
// crash, Reconcile settles a marked directory by the row: a directory whose row names
// this member stays (the marker goes); one whose row names another member, or no row,
// is the remains of the move on the side that lost it and is removed with its storage.

const memberMoveMarker = ".moving-member"

// MemberMove describes an arriving instance: its row's name (before a rename) and the
// member it comes from.
type MemberMove struct {
	Name string // the row's name now; Incoming.Instance.Name is the name it gets here
	From int64  // the source member's id: the row must still name it at commit
}

// markMemberMove records in dir that the instance is being moved between members.
func markMemberMove(dir string) error {
	return atomicfile.WriteDurable(filepath.Join(dir, memberMoveMarker), []byte("moving\n"), 0o600)
}

// unmarkMemberMove drops the record: the move is settled on this side.
func unmarkMemberMove(dir string) { _ = os.Remove(filepath.Join(dir, memberMoveMarker)) }

// prepareMoveIn turns spec (CreateFromTrees') into the arrival of a moved instance: the
// directory starts clean and marked, and the commit hands the existing row over to this
// member instead of inserting one.
func (ct *Creator) prepareMoveIn(spec *newSpec, mv MemberMove) {
	name := spec.row.Name
	makeDir := spec.makeDir
	spec.event = map[string]any{"source": "cluster-move"}
	spec.makeDir = func(dir string) error {
		// Leftovers of an earlier failed arrival, once the database says they are: no
		// instance has the name but the moving one, still the source's. An instance made
		// here under the name after the move was accepted (or a forged, replayed arrival)
		// is no leftover. The name is reserved here from now on (newInstance).
		err := ct.arrivalFree(name, mv)
		if err != nil {
			return err
		}

		_ = spec.pool.DeleteInstance(name)
		err = os.RemoveAll(dir)
		if err != nil {
			return err
		}

		err = makeDir(dir)
		if err != nil {
			return err
		}

		return markMemberMove(dir)
	}

	snapNames := map[string]bool{}
	for _, s := range spec.snapshots {
		snapNames[s.Name] = true
	}

	spec.commit = func(ctx context.Context, tx *db.Tx, ids idmap.Set) error {
		cur, err := tx.GetInstance(ctx, mv.Name)
		if err != nil {
			return err
		}

		if cur.MemberID != mv.From {
			return api.StatusErrorf(http.StatusConflict, "instance %q is no longer on the cluster member it is moved from", mv.Name)
		}

		have, err := tx.GetInstanceSnapshots(ctx, mv.Name)
		if err != nil {
			return err
		}

		err = sameSnapshots(have, snapNames)
		if err != nil {
			return err
		}

		set, unset := movedConfig(cur.Config, ids)
		return tx.MoveInstanceToMember(ctx, mv.Name, name, mv.From, ct.member, set, unset)
	}
}

// arrivalFree checks that name can be cleared for the arrival of mv: no row has it but
// the moving instance's, which is still on the member it comes from (409 otherwise).
func (ct *Creator) arrivalFree(name string, mv MemberMove) error {
	ctx, cancel := context.WithTimeout(context.Background(), arrivalCheckTimeout)
	defer cancel()
	return ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetInstance(ctx, name)
		switch {
		case api.StatusErrorCheck(err, http.StatusNotFound) && name != mv.Name:
			return nil
		case api.StatusErrorCheck(err, http.StatusNotFound):
			return api.StatusErrorf(http.StatusConflict, "instance %q no longer exists", project.Name(name))
		case err != nil:
			return err
		case name != mv.Name:
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists", project.Name(name))
		case cur.MemberID != mv.From:
			return api.StatusErrorf(http.StatusConflict, "instance %q is no longer on the cluster member it is moved from", project.Name(name))
		}

		return nil
	})
}

// arrivalCheckTimeout bounds arrivalFree's read.
const arrivalCheckTimeout = 10 * time.Second

// sameSnapshots checks that the snapshots received are exactly the row's: the storage
// made here must match what the row lists.
func sameSnapshots(rows []db.Snapshot, received map[string]bool) error {
	if len(rows) != len(received) {
		return api.StatusErrorf(http.StatusConflict, "the instance's snapshots changed during the move (%d received, %d recorded)", len(received), len(rows))
	}

	for _, s := range rows {
		if !received[s.Name] {
			return api.StatusErrorf(http.StatusConflict, "snapshot %q was not received", s.Name)
		}
	}

	return nil
}

// movedConfig is how a moved instance's config changes: its id range is this member's
// (a fresh one), and of its other volatile keys only those that describe the instance
// itself stay (uuid, base image, MAC addresses, the templates still to apply, its
// evacuation record and last power state); those that describe it on its old host (a
// NIC's host-side name, ...) go.
func movedConfig(config map[string]string, ids idmap.Set) (set map[string]string, unset []string) {
	set = identityKeys(config, KeepIdentity, ids)
	for k := range config {
		if _, ok := set[k]; ok || !strings.HasPrefix(k, "volatile.") || keptOnMove(k) {
			continue
		}

		unset = append(unset, k)
	}

	return set, unset
}

// keptOnMove reports whether volatile key k stays when the instance changes member.
func keptOnMove(k string) bool {
	switch k {
	case "volatile.uuid", "volatile.base_image", "volatile.apply_template", "volatile.last_state.power":
		return true
	}

	return strings.HasSuffix(k, ".hwaddr") || strings.HasPrefix(k, "volatile.evacuate.")
}

// MoveOut sends stopped instance name to another cluster member: send gets its trees
// (snapshots included) under the instance lock, and returns once the target answered.
// When the row names another member afterwards (the target committed; even if send
// then failed, e.g. the answer was lost), this member's copy is removed; otherwise the
// instance stays here as it was. A running instance is refused (400), as LXD 5.0 does.
func (ct *Creator) MoveOut(ctx context.Context, name string, send func(ctx context.Context, t *Trees) error) error {
	ctx, done := ct.host.track(ctx, name)
	defer done()

	unlock := ct.host.lock(name)
	defer unlock()

	if ct.host.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before moving it to another cluster member", project.Name(name))
	}

	t, err := ct.trees(ctx, name, true)
	if err != nil {
		return err
	}

	dir := ct.host.instanceDir(name)
	err = markMemberMove(dir)
	if err != nil {
		return fmt.Errorf("recording the move of %q: %w", name, err)
	}

	sendErr := send(ctx, t)
	moved, err := ct.movedAway(context.WithoutCancel(ctx), name)
	if err != nil {
		// Unknown outcome: the marker stays, the next start settles it by the row.
		return errors.Join(sendErr, fmt.Errorf("reading where instance %q is now: %w", name, err))
	}

	if !moved {
		unmarkMemberMove(dir)
		if sendErr == nil {
			sendErr = errors.New("the target cluster member reported success but the instance did not move")
		}

		return sendErr
	}

	if sendErr != nil {
		ct.log.Warn("the move's answer was lost but the target took the instance", "instance", name, "err", sendErr)
	}

	err = t.pool.DeleteInstance(name)
	if err != nil {
		ct.log.Warn("removing the moved instance's storage; retried at next start", "instance", name, "err", err)
		return nil
	}

	t.pool.PruneBackupImages()
	ct.host.forgetMoved(name)
	err = os.RemoveAll(dir)
	if err != nil {
		ct.log.Warn("removing the moved instance's files", "instance", name, "err", err)
	}

	return nil
}

// movedAway reports whether instance name's row no longer names this member (or no
// longer exists under that name: moved and renamed).
func (ct *Creator) movedAway(ctx context.Context, name string) (bool, error) {
	var member int64
	err := ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		member, err = tx.InstanceMember(ctx, name)
		return err
	})
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return true, nil
	}

	if err != nil {
		return false, err
	}

	return member != ct.member, nil
}

// forgetMoved drops what this daemon keeps of an instance that moved to another member:
// its devices' records, its lock. (Backups do not move; the handler refuses a move of
// an instance that has some, as LXD does.)
func (m *Manager) forgetMoved(name string) {
	m.devices.Deleted(name)
	m.mu.Lock()
	delete(m.locks, name)
	m.mu.Unlock()
}

// settleMemberMoves finishes or undoes the moves between members a crash interrupted:
// an instance directory marked as moving whose row names this member stays (the move
// did not happen, or it arrived); one whose row names another member or nothing is
// removed with its storage. owners maps every row's name to its member.
func (ru *Runner) settleMemberMoves(owners map[string]int64) {
	entries, _ := os.ReadDir(filepath.Join(ru.dir, "instances"))
	for _, e := range entries {
		dir := filepath.Join(ru.dir, "instances", e.Name())
		_, err := os.Lstat(filepath.Join(dir, memberMoveMarker))
		if err != nil {
			continue
		}

		if id, ok := owners[e.Name()]; ok && id == ru.member {
			unmarkMemberMove(dir)
			ru.log.Info("an interrupted move between cluster members left the instance here", "instance", e.Name())
			continue
		}

		failed := false
		for _, pool := range ru.pools.pools.Drivers() {
			err := pool.DeleteInstance(e.Name())
			if err != nil {
				failed = true
				ru.log.Warn("removing what an interrupted move between cluster members left; retried at next start", "instance", e.Name(), "err", err)
				continue
			}

			pool.PruneBackupImages()
		}

		if !failed {
			_ = os.RemoveAll(dir)
			ru.log.Info("removed what an interrupted move between cluster members left", "instance", e.Name())
		}
	}
}
