package cluster

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/cluster/gateway"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// node is the dqlite node as this package uses it; lxd/cluster/gateway is its only
// implementation, behind this seam so the rest of the package does not follow its API.
type node interface {
	DB() *sql.DB
	Close() error
	// Roles maps members' API addresses to their LXD database roles.
	Roles(ctx context.Context) map[string][]string
}

// globalDir is dqlite's directory under the state directory.
func globalDir(dir string) string { return filepath.Join(dir, "database", "global") }

// removeHalfMade removes what an interrupted enable or join left on a host that is not
// clustered: its dqlite directory and the cluster certificate it had written.
func removeHalfMade(dir string) error {
	err := os.RemoveAll(globalDir(dir))
	if err != nil {
		return err
	}

	for _, f := range []string{listener.ClusterCertFile, listener.ClusterKeyFile} {
		err = os.Remove(filepath.Join(dir, f))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
	}

	return nil
}

func notFound(name string) error {
	return api.StatusErrorf(http.StatusNotFound, "cluster member %q not found", name)
}

// logger is where dqlite's messages go (nil: slog.Default()).
var logger *slog.Logger

// gatewayNode adapts a gateway to node.
type gatewayNode struct{ g *gateway.Gateway }

func (n gatewayNode) DB() *sql.DB  { return n.g.DB() }
func (n gatewayNode) Close() error { return n.g.Close() }

func (n gatewayNode) Roles(ctx context.Context) map[string][]string {
	out := map[string][]string{}
	ms, err := n.g.Members(ctx)
	if err != nil {
		return out
	}

	for _, m := range ms {
		roles := []string{}
		switch m.Role {
		case "voter":
			roles = append(roles, "database")
		case "standby":
			roles = append(roles, "database-standby")
		}

		if m.Leader {
			roles = append(roles, "database-leader")
		}

		out[apiAddressOf(m.Address)] = roles
	}

	return out
}

// transient classifies the cluster driver's errors worth retrying (lxd/db's
// transactions use it).
func transient(err error) bool { return gateway.IsTransient(err) }

func gatewayConfig(dir, apiAddr string, cert *listener.Cert) (gateway.Config, error) {
	if apiAddr == "" {
		return gateway.Config{Dir: globalDir(dir), Cert: cert.KeyPair, Logger: logger}, nil
	}

	ra, err := gateway.RaftAddress(apiAddr)
	if err != nil {
		return gateway.Config{}, err
	}

	return gateway.Config{Dir: globalDir(dir), Address: ra, Cert: cert.KeyPair, Logger: logger}, nil
}

func openNode(ctx context.Context, dir, apiAddr string, cert *listener.Cert) (node, error) {
	cfg, err := gatewayConfig(dir, apiAddr, cert)
	if err != nil {
		return nil, err
	}

	g, err := gateway.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}

	return gatewayNode{g}, nil
}

func bootstrapNode(ctx context.Context, dir, apiAddr string, cert *listener.Cert) (node, error) {
	cfg, err := gatewayConfig(dir, apiAddr, cert)
	if err != nil {
		return nil, err
	}

	g, err := gateway.Bootstrap(ctx, cfg)
	if err != nil {
		return nil, err
	}

	return gatewayNode{g}, nil
}

func joinNode(ctx context.Context, dir, apiAddr string, cert *listener.Cert, peers []string) (node, error) {
	cfg, err := gatewayConfig(dir, apiAddr, cert)
	if err != nil {
		return nil, err
	}

	g, err := gateway.Join(ctx, cfg, peers)
	if err != nil {
		return nil, err
	}

	return gatewayNode{g}, nil
}

// raftAddress is where a member's dqlite listens: its API port + 1.
func raftAddress(apiAddr string) (string, error) { return gateway.RaftAddress(apiAddr) }
