package trust

import (
	"context"
	"slices"
)

// Refresh reloads the trusted certificates from the database and revokes those that
// went or were narrowed (type, restriction, projects) since the last load. A cluster
// member calls it periodically: the certificates table is the cluster's, so a
// certificate removed or restricted through another member must stop working here
// too (issue 16 review), not only on the member that changed it. It returns how many
// certificates it revoked.
func (s *Store) Refresh(ctx context.Context) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	old := s.certs
	s.mu.RUnlock()
	err := s.reload(ctx)
	if err != nil {
		return 0, err
	}

	s.mu.RLock()
	cur := s.certs
	s.mu.RUnlock()
	n := 0
	for fp, was := range old {
		now, ok := cur[fp]
		if ok && now.Type == was.Type && now.Restricted == was.Restricted && slices.Equal(now.Projects, was.Projects) {
			continue
		}

		conns := s.revoke(context.Background(), fp)
		s.log.Info("certificate removed or narrowed on another member: its connections closed", "name", was.Name, "fingerprint", fp, "connections", conns)
		n++
	}

	return n, nil
}
