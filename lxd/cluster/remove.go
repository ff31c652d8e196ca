package cluster

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/lxd/cluster/gateway"
)

// RemoveRaftMember takes the member with the given API address out of the cluster
// database's raft configuration (DELETE /1.0/cluster/members/{name}). Its raft
// endpoint is on the same host, one port up (gateway.RaftAddress).
func (s *Service) RemoveRaftMember(ctx context.Context, apiAddress string) error {
	s.mu.RLock()
	n := s.node
	s.mu.RUnlock()
	r, ok := n.(interface {
		Remove(ctx context.Context, raftAddress string) error
	})
	if n == nil || !ok {
		return fmt.Errorf("removing cluster member %s: this member runs no cluster database", apiAddress)
	}

	ra, err := gateway.RaftAddress(apiAddress)
	if err != nil {
		return err
	}

	return r.Remove(ctx, ra)
}

// Remove takes a node out of raft (gateway.Remove).
func (n gatewayNode) Remove(ctx context.Context, raftAddress string) error {
	return n.g.Remove(ctx, raftAddress)
}
