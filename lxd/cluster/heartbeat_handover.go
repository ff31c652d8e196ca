package cluster

import "context"

// Handover passes this member's database roles, and leadership if it holds it, to other
// members: the daemon calls it on SIGTERM, before it stops serving, so the cluster does
// not wait an election timeout for it. Nothing to do when not clustered.
func (s *Service) Handover(ctx context.Context) error {
	s.mu.RLock()
	n := s.node
	s.mu.RUnlock()
	h, ok := n.(interface{ Handover(context.Context) error })
	if n == nil || !ok {
		return nil
	}

	return h.Handover(ctx)
}

// Handover hands the gateway's roles over (gateway.Handover).
func (n gatewayNode) Handover(ctx context.Context) error { return n.g.Handover(ctx) }
