package instance

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// A pool move (MoveToPool) has the instance's storage on two pools for a while: the copy
// on the target until the row points there, the source after. A marker in the instance
// directory names both for that time, so that after a crash Reconcile removes the copy
// on whichever pool the row does not name: the instance stays whole where its row says,
// and a later move to that pool does not find its place taken.

const moveMarkerName = ".moving-pool"

type moveMarker struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// markMove records a move of the instance whose directory is dir; the returned func
// drops the record.
func markMove(dir, from, to string) (func(), error) {
	data, err := json.Marshal(moveMarker{From: from, To: to})
	if err != nil {
		return nil, err
	}

	path := filepath.Join(dir, moveMarkerName)
	err = atomicfile.WriteDurable(path, data, 0o600)
	if err != nil {
		return nil, err
	}

	return func() { _ = os.Remove(path) }, nil
}

// settleMove finishes or undoes the pool move a crash interrupted for stopped instance
// inst: the storage on the pool of the marker its row does not name goes.
func (ru *Runner) settleMove(inst *db.Instance, profiles map[string]*db.Profile) {
	path := filepath.Join(ru.dir, "instances", inst.Name, moveMarkerName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}

	var m moveMarker
	if err == nil {
		err = json.Unmarshal(data, &m)
	}

	if err != nil {
		ru.log.Warn("reading an interrupted pool move; left as is", "instance", inst.Name, "err", err)
		return
	}

	_, devices := Expand(inst, profiles)
	cur := ru.pools.nameOf(devices)
	stale := ""
	switch cur {
	case m.From:
		stale = m.To
	case m.To:
		stale = m.From
	}

	if stale != "" {
		pool, err := ru.pools.pools.Driver(stale)
		if err != nil {
			ru.log.Warn("finishing an interrupted pool move; retried at next start", "instance", inst.Name, "pool", stale, "err", err)
			return
		}

		err = pool.DeleteInstance(inst.Name)
		if err != nil {
			ru.log.Warn("finishing an interrupted pool move; retried at next start", "instance", inst.Name, "pool", stale, "err", err)
			return
		}

		pool.PruneBackupImages()
		ru.log.Info("removed what an interrupted pool move left", "instance", inst.Name, "pool", stale)
	}

	_ = os.Remove(path)
}
