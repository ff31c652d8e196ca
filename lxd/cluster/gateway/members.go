package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/canonical/go-dqlite/client"
)

// localTimeout bounds a query to the local node (an abstract unix socket).
const localTimeout = 500 * time.Millisecond

// Member is a node of the raft cluster.
type Member struct {
	ID      uint64
	Address string
	// Role is "voter", "standby" or "spare".
	Role   string
	Leader bool
}

// localClient returns the cached client of the local node, connecting if needed.
func (g *Gateway) localClient(ctx context.Context) (*client.Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()

	if g.local != nil {
		return g.local, nil
	}

	cli, err := g.app.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the local cluster database node: %w", err)
	}

	g.local = cli

	return cli, nil
}

// dropLocal forgets a local client that failed.
func (g *Gateway) dropLocal(cli *client.Client) {
	g.mu.Lock()
	defer g.mu.Unlock()

	if g.local == cli {
		_ = cli.Close()
		g.local = nil
	}
}

// localLeader asks the local node which member it follows; "" means none.
func (g *Gateway) localLeader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()

	cli, err := g.localClient(ctx)
	if err != nil {
		return "", err
	}

	info, err := cli.Leader(ctx)
	if err != nil {
		g.dropLocal(cli)
		return "", fmt.Errorf("asking the local cluster database node for the leader: %w", err)
	}

	if info == nil {
		return "", nil
	}

	return info.Address, nil
}

// waitLeader returns once the local node knows a leader, or ErrNoLeader once the node
// has known none for leaderWait (counted from the start of the leaderless stretch, not
// of this call: retries do not wait all over again), or at once (wrapping
// ErrQuorumLost) when a majority of the voters cannot be reached. It only judges when
// the local node votes or stands by: a spare gets no replication from raft and never
// knows the leader, and a node that cannot be asked tells nothing; then the driver's
// own search decides.
func (g *Gateway) waitLeader(ctx context.Context) error {
	start := time.Now()
	for {
		addr, err := g.localLeader(ctx)
		if err != nil || addr != "" {
			g.leader.sawLeader(true)
			return nil
		}

		if !g.participates(ctx) {
			return nil
		}

		since := g.leader.sawLeader(false)

		err = g.quorumLost(ctx)
		if err != nil {
			g.log.Debug("cluster database: no leader and no quorum", "waited", time.Since(start), "err", err, "node", g.cfg.Address)
			return err
		}

		if time.Since(since) >= leaderWait {
			g.log.Debug("cluster database: no leader", "waited", time.Since(start), "leaderless", time.Since(since), "node", g.cfg.Address)
			return ErrNoLeader
		}

		select {
		case <-ctx.Done():
			return ErrNoLeader
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// participates reports whether the local node is a voter or stand-by in its own view
// of the configuration.
func (g *Gateway) participates(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()

	cli, err := g.localClient(ctx)
	if err != nil {
		return false
	}

	nodes, err := cli.Cluster(ctx)
	if err != nil {
		g.dropLocal(cli)
		return false
	}

	for _, n := range nodes {
		if n.ID == g.ID() {
			return n.Role == client.Voter || n.Role == client.StandBy
		}
	}

	return false
}

// Leader returns the raft address of the current leader, or ErrNoLeader. A voter or
// stand-by answers from its own raft state; a spare (which raft does not keep
// informed) asks the members.
func (g *Gateway) Leader(ctx context.Context) (string, error) {
	addr, err := g.localLeader(ctx)
	if err != nil {
		return "", err
	}

	if addr != "" {
		return addr, nil
	}

	if g.participates(ctx) {
		return "", ErrNoLeader
	}

	cli, err := g.findLeader(ctx)
	if err != nil {
		return "", err
	}

	defer func() { _ = cli.Close() }()

	info, err := cli.Leader(ctx)
	if err != nil || info == nil || info.Address == "" {
		return "", ErrNoLeader
	}

	return info.Address, nil
}

// findTimeout bounds the search for the leader among the members.
const findTimeout = connectionTimeout

// findLeader connects to the leader through the member list, with our dial.
func (g *Gateway) findLeader(ctx context.Context) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()

	cli, err := client.FindLeader(ctx, g.store, client.WithDialFunc(g.dial), client.WithLogFunc(g.logf))
	if err != nil {
		return nil, ErrNoLeader
	}

	return cli, nil
}

// Members returns the raft configuration with roles and the leader marked: a voter or
// stand-by's own view (so it still answers without a leader), else the leader's.
func (g *Gateway) Members(ctx context.Context) ([]Member, error) {
	if !g.participates(ctx) {
		return g.leaderMembers(ctx)
	}

	leader, err := g.localLeader(ctx)
	if err != nil {
		return nil, err
	}

	lctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()

	cli, err := g.localClient(lctx)
	if err != nil {
		return nil, err
	}

	nodes, err := cli.Cluster(lctx)
	if err != nil {
		g.dropLocal(cli)
		return nil, fmt.Errorf("asking the local cluster database node for members: %w", err)
	}

	return members(nodes, leader), nil
}

func (g *Gateway) leaderMembers(ctx context.Context) ([]Member, error) {
	cli, err := g.findLeader(ctx)
	if err != nil {
		return nil, err
	}

	defer func() { _ = cli.Close() }()

	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()

	info, err := cli.Leader(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the leader for its address: %w", err)
	}

	nodes, err := cli.Cluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the leader for members: %w", err)
	}

	return members(nodes, info.Address), nil
}

func members(nodes []client.NodeInfo, leader string) []Member {
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Member{
			ID:      n.ID,
			Address: n.Address,
			Role:    roleName(n.Role),
			Leader:  leader != "" && n.Address == leader,
		})
	}

	return out
}

func roleName(r client.NodeRole) string {
	switch r {
	case client.Voter:
		return "voter"
	case client.StandBy:
		return "standby"
	default:
		return "spare"
	}
}

// handoverTimeout bounds Handover when ctx has no deadline (the app package allows a
// minute).
const handoverTimeout = 10 * time.Second

// Handover passes leadership and this node's voting role to other members, for a
// graceful stop (SIGTERM). Call Close afterwards.
func (g *Gateway) Handover(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handoverTimeout)
		defer cancel()
	}

	err := g.app.Handover(ctx)
	if err != nil {
		return fmt.Errorf("handing cluster database roles over: %w", err)
	}

	return nil
}

// Remove takes the node with the given raft address out of the raft configuration
// (a member leaving or deleted). Stop that node first (Handover, Close) when it is
// still running: a removed node that keeps running would campaign alone.
func (g *Gateway) Remove(ctx context.Context, address string) error {
	cli, err := g.findLeader(ctx)
	if err != nil {
		return err
	}

	defer func() { _ = cli.Close() }()

	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()

	nodes, err := cli.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("asking the leader for members: %w", err)
	}

	for _, n := range nodes {
		if n.Address == address {
			err = cli.Remove(ctx, n.ID)
			if err != nil {
				return fmt.Errorf("removing cluster database node %s: %w", address, err)
			}

			return nil
		}
	}

	return fmt.Errorf("no cluster database node has address %q", address)
}
