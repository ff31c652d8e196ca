package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/canonical/go-dqlite/client"
)

// ErrQuorumLost is returned (wrapping ErrNoLeader) when the local node knows no leader
// and cannot reach a majority of the voters: no election can succeed, so waiting for
// one only delays the error. Callers need not retry it.
var ErrQuorumLost = errors.New("quorum lost")

// quorumCache is how long a reachability probe of the voters is reused.
const quorumCache = 250 * time.Millisecond

// noLeaderGap is how long without a look at the local node still counts as one
// leaderless stretch (callers retry within ~250 ms).
const noLeaderGap = 500 * time.Millisecond

// leaderState remembers since when the local node has known no leader, so that a
// caller arriving in the middle of a leaderless stretch waits only for what is left
// of leaderWait rather than for a whole new one, and the last quorum probe.
type leaderState struct {
	mu        sync.Mutex
	since     time.Time // first look without a leader, zero when one was seen
	lastLook  time.Time
	probedAt  time.Time
	probeLost error
}

// sawLeader records a look at the local node; it returns the start of the current
// leaderless stretch (zero when a leader is known).
func (s *leaderState) sawLeader(known bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := time.Now()
	if known || now.Sub(s.lastLook) > noLeaderGap {
		s.since = time.Time{}
	}

	s.lastLook = now
	if !known && s.since.IsZero() {
		s.since = now
	}

	return s.since
}

// quorumLost probes, with the 200 ms dial of the driver, whether the local node can
// reach a majority of the voters of its own configuration. It returns an error
// wrapping ErrQuorumLost and ErrNoLeader if not. A refused connection (the member's
// process is gone) answers at once; a silent one after dialTimeout. It only ever
// makes an error come sooner: writes still need the leader to commit.
func (g *Gateway) quorumLost(ctx context.Context) error {
	g.leader.mu.Lock()
	if time.Since(g.leader.probedAt) < quorumCache {
		err := g.leader.probeLost
		g.leader.mu.Unlock()
		return err
	}
	g.leader.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()

	cli, err := g.localClient(lctx)
	if err != nil {
		return nil
	}

	nodes, err := cli.Cluster(lctx)
	if err != nil {
		g.dropLocal(cli)
		return nil
	}

	var voters []string
	self := false
	for _, n := range nodes {
		if n.Role != client.Voter {
			continue
		}

		if n.ID == g.ID() {
			self = true
			continue
		}

		voters = append(voters, n.Address)
	}

	total := len(voters)
	reachable := 0
	if self {
		total++
		reachable++
	}

	results := make(chan bool, len(voters))
	for _, addr := range voters {
		go func() {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				_ = c.Close()
			}

			results <- err == nil
		}()
	}

	for range voters {
		if <-results {
			reachable++
		}
	}

	var lost error
	if total > 0 && 2*reachable <= total {
		lost = fmt.Errorf("%w (%w: %d of %d voters reachable)", ErrNoLeader, ErrQuorumLost, reachable, total)
	}

	g.log.Debug("cluster database: quorum probe", "reachable", reachable, "voters", total, "node", g.cfg.Address)

	g.leader.mu.Lock()
	g.leader.probedAt = time.Now()
	g.leader.probeLost = lost
	g.leader.mu.Unlock()

	return lost
}

// watchLeaderLoss cancels a leader search (calls cancel) as soon as the local voter or
// stand-by knows no leader any more: the search may be chasing a leader that died,
// which the node names until its election timeout; then waitLeader judges. The
// returned function stops the watch.
func (g *Gateway) watchLeaderLoss(ctx context.Context, cancel context.CancelFunc) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)

		t := time.NewTicker(watchInterval)
		defer t.Stop()

		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}

			addr, err := g.localLeader(ctx)
			if err == nil && addr == "" && g.participates(ctx) {
				g.log.Debug("cluster database: local node lost the leader, stopping the search", "node", g.cfg.Address)
				cancel()
				return
			}
		}
	}()

	return func() {
		close(done)
		<-stopped
	}
}
