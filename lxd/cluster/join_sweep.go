package cluster

import (
	"context"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// unjoinedTimeout is how long an accepted member has to send its first heartbeat (it
// does once it has joined the cluster database and restarted). One that never does
// failed its join after Accept inserted its row: the row is removed, so its name and
// address are free for another attempt (issue 16 review). A variable for tests.
var unjoinedTimeout = 2 * time.Minute

// sweepUnjoined removes member name, accepted at acceptedAt, if it has not sent a
// heartbeat unjoinedTimeout later.
func (s *Service) sweepUnjoined(name string, acceptedAt time.Time) {
	time.AfterFunc(unjoinedTimeout, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := s.dropUnjoined(ctx, name, acceptedAt)
		if err != nil {
			s.log.Warn("removing a member whose join did not complete", "member", name, "err", err)
		}
	})
}

// dropUnjoined deletes member name if its heartbeat is still the one Accept wrote at
// acceptedAt (within a second: the stored time's precision), and takes its address out
// of raft in case its node got that far. It reports whether it removed the member.
func (s *Service) dropUnjoined(ctx context.Context, name string, acceptedAt time.Time) (bool, error) {
	s.mu.RLock()
	d := s.db
	s.mu.RUnlock()
	if d == nil {
		return false, nil
	}

	var addr string
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		m, err := tx.ClusterMember(ctx, name)
		if api.StatusCodeOf(err) == 404 {
			return nil // removed meanwhile
		}

		if err != nil {
			return err
		}

		if m.Heartbeat.After(acceptedAt.Add(time.Second)) {
			return nil // it joined
		}

		err = tx.DeleteMember(ctx, name, false)
		if err != nil {
			return err
		}

		addr = m.Address
		return nil
	})
	if err != nil || addr == "" {
		return false, err
	}

	s.log.Warn("removed a member that never completed its join", "member", name, "address", addr)
	err = s.RemoveRaftMember(ctx, addr)
	if err != nil {
		s.log.Info("the unjoined member was not in raft", "member", name, "err", err)
	}

	return true, nil
}
