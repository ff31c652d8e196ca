package cluster

import (
	"context"
	"errors"
)

// SetSelfName records this member's new name (a rename through the members API) in
// local.db, so that Self and the next start know it. The members row is renamed by the
// caller first.
func (s *Service) SetSelfName(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled || s.localDB == nil {
		return errors.New("not clustered")
	}

	l := s.self
	l.Name = name
	err := writeLocal(ctx, s.localDB, l)
	if err != nil {
		return err
	}

	s.self = l
	return nil
}
