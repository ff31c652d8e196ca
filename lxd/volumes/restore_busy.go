package volumes

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
)

// A restore exchanges a volume's directory for a copy of the snapshot: an instance that
// has the volume mounted would keep the old directory, emptied. LXD refuses a restore
// only while an instance using the volume runs, and so does Berth: attached to stopped
// instances it is restored, and they mount the restored content at their next start.
// A start racing with the restore is closed off both ways: the restore marks the volume
// restoring before it looks at its instances, and Open (the mount of a start or a
// hotplug) refuses a volume being restored; a start that opened the volume before the
// mark still holds its instance's lock, which busy reports.

// SetInstanceBusy tells the service how to see whether an instance (key) runs or is in
// the middle of a change such as a start (*instance.Manager.Busy). Without it a restore
// is refused while any instance has the volume attached.
func (s *Service) SetInstanceBusy(busy func(inst string) bool) {
	s.locks.mu.Lock()
	s.locks.busy = busy
	s.locks.mu.Unlock()
}

// beginRestore marks pool/name restoring (Open refuses it until the returned func is
// called) and refuses, with a 400 naming them, while instances using it run or start.
func (s *Service) beginRestore(ctx context.Context, pool, name string) (func(), error) {
	k := key{pool, name}
	s.locks.mu.Lock()
	if s.locks.restoring == nil {
		s.locks.restoring = map[key]bool{}
	}

	s.locks.restoring[k] = true
	busy := s.locks.busy
	s.locks.mu.Unlock()
	done := func() {
		s.locks.mu.Lock()
		delete(s.locks.restoring, k)
		s.locks.mu.Unlock()
	}

	var users []string
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		u, err := attached(ctx, tx)
		if err == nil {
			users = u.instances[k]
		}

		return err
	})
	if err != nil {
		done()
		return nil, err
	}

	var running []string
	for _, inst := range users {
		if busy == nil || busy(inst) {
			running = append(running, projects.InstanceURL(inst))
		}
	}

	if len(running) > 0 {
		done()
		slices.Sort(running)
		return nil, api.StatusErrorf(http.StatusBadRequest, "storage volume %q is used by running instances (%s): stop them before restoring a snapshot", name, strings.Join(running, ", "))
	}

	return done, nil
}

// restoring reports whether pool/name is being restored.
func (s *Service) restoring(pool, name string) bool {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	return s.locks.restoring[key{pool, name}]
}
