package networks

import (
	"context"
	"maps"
	"net"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/shared/api"
)

// Network forwards (LXD's): a host address whose ports (or all traffic) go to instances
// of a managed network, by destination NAT in the network's nftables table. The database
// holds them; every change rewrites the network's forward rules within the transaction
// that records it, so that a refused rule set records nothing.

// ForwardETag is the ETag of a forward: its writable fields and identity.
func ForwardETag(f *api.NetworkForward) any {
	return []any{f.ListenAddress, f.Description, f.Config, f.Ports}
}

func forwardToAPI(f *db.NetworkForward) api.NetworkForward {
	out := api.NetworkForward{NetworkForwardPut: f.NetworkForwardPut, ListenAddress: f.ListenAddress, Location: "none"}
	if out.Config == nil {
		out.Config = map[string]string{}
	}

	if out.Ports == nil {
		out.Ports = []api.NetworkForwardPort{}
	}

	return out
}

// Forwards lists a managed network's forwards.
func (s *Service) Forwards(ctx context.Context, name string) ([]api.NetworkForward, error) {
	_, err := s.getManaged(ctx, name)
	if err != nil {
		return nil, err
	}

	var rows []db.NetworkForward
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err = tx.GetNetworkForwards(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.NetworkForward, 0, len(rows))
	for i := range rows {
		out = append(out, forwardToAPI(&rows[i]))
	}

	return out, nil
}

// Forward returns one forward of a managed network.
func (s *Service) Forward(ctx context.Context, name, listen string) (*api.NetworkForward, error) {
	_, err := s.getManaged(ctx, name)
	if err != nil {
		return nil, err
	}

	var row *db.NetworkForward
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err = tx.GetNetworkForward(ctx, name, canonicalIP(listen))
		return err
	})
	if err != nil {
		return nil, err
	}

	out := forwardToAPI(row)
	return &out, nil
}

// canonicalIP writes an address the way forwards are stored (unchanged when it is none).
func canonicalIP(s string) string {
	ip := net.ParseIP(s)
	if ip == nil {
		return s
	}

	return ip.String()
}

// CreateForward adds a forward: the listen address must be one of the host's and not
// forwarded already (409), every port and target valid (400).
func (s *Service) CreateForward(ctx context.Context, name string, req api.NetworkForwardsPost) error {
	unlock := s.mgr.Lock()
	defer unlock()
	n, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	listen, err := parseListen(req.ListenAddress)
	if err != nil {
		return err
	}

	if !hostHasAddress(listen) {
		return badRequest("listen_address %s is not an address of this host", listen)
	}

	_, err = forwardRules(listen, req.NetworkForwardPut, addrsOf(n.Config))
	if err != nil {
		return err
	}

	row := db.NetworkForward{Network: name, ListenAddress: listen.String(), NetworkForwardPut: req.NetworkForwardPut}
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetNetworkForwards(ctx, name)
		if err != nil {
			return err
		}

		if len(rows) >= maxForwardsPerNetwork {
			return badRequest("network %s has %d forwards already, the most it may have", name, len(rows))
		}

		err = tx.CreateNetworkForward(ctx, row)
		if err != nil {
			return err
		}

		return s.applyForwardsTx(ctx, tx, n)
	})
	if err != nil {
		return err
	}

	s.emit("network-forward-created", urlOf(name)+"/forwards/"+row.ListenAddress, nil)
	return nil
}

// UpdateForward applies a PUT (patch false: everything replaced) or a PATCH (config merged,
// ports replaced when given, an empty description kept).
func (s *Service) UpdateForward(ctx context.Context, name, listen, ifMatch string, put api.NetworkForwardPut, patch bool) error {
	unlock := s.mgr.Lock()
	defer unlock()
	n, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	listen = canonicalIP(listen)
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetNetworkForward(ctx, name, listen)
		if err != nil {
			return err
		}

		curAPI := forwardToAPI(cur)
		err = etag.Match(ifMatch, ForwardETag(&curAPI))
		if err != nil {
			return err
		}

		if patch {
			config := maps.Clone(curAPI.Config)
			maps.Copy(config, put.Config)
			put.Config = config
			if put.Ports == nil {
				put.Ports = curAPI.Ports
			}

			if put.Description == "" {
				put.Description = curAPI.Description
			}
		}

		_, err = forwardRules(net.ParseIP(listen), put, addrsOf(n.Config))
		if err != nil {
			return err
		}

		err = tx.UpdateNetworkForward(ctx, db.NetworkForward{Network: name, ListenAddress: listen, NetworkForwardPut: put})
		if err != nil {
			return err
		}

		return s.applyForwardsTx(ctx, tx, n)
	})
	if err != nil {
		return err
	}

	s.emit("network-forward-updated", urlOf(name)+"/forwards/"+listen, nil)
	return nil
}

// DeleteForward removes a forward.
func (s *Service) DeleteForward(ctx context.Context, name, listen string) error {
	unlock := s.mgr.Lock()
	defer unlock()
	n, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	listen = canonicalIP(listen)
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.DeleteNetworkForward(ctx, name, listen)
		if err != nil {
			return err
		}

		return s.applyForwardsTx(ctx, tx, n)
	})
	if err != nil {
		return err
	}

	s.emit("network-forward-deleted", urlOf(name)+"/forwards/"+listen, nil)
	return nil
}

// applyForwardsTx writes the firewall rules of every forward of n as tx sees them.
func (s *Service) applyForwardsTx(ctx context.Context, tx *db.Tx, n *api.Network) error {
	rows, err := tx.GetNetworkForwards(ctx, n.Name)
	if err != nil {
		return err
	}

	rules := []firewall.ForwardRule{}
	a := addrsOf(n.Config)
	for _, r := range rows {
		rs, err := forwardRules(net.ParseIP(r.ListenAddress), r.NetworkForwardPut, a)
		if err != nil {
			// A network's new subnet may leave a stored target outside it: that forward
			// is skipped, not the others.
			s.log.Warn("skipping network forward", "network", n.Name, "listen", r.ListenAddress, "err", err)
			continue
		}

		rules = append(rules, rs...)
	}

	err = firewall.ApplyForwards(n.Name, rules)
	if err != nil {
		return api.StatusErrorf(http.StatusInternalServerError, "writing forwards of %s: %v", n.Name, err)
	}

	return nil
}

// applyForwards writes a network's forward rules from the database (a network started or
// renamed).
func (s *Service) applyForwards(ctx context.Context, name string) {
	// The network's row, not Get: its used_by would read every instance's devices, for
	// each network at every daemon start.
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetNetwork(ctx, name)
		if err != nil {
			return err
		}

		return s.applyForwardsTx(ctx, tx, s.toAPI(row, nil))
	})

	if err != nil {
		s.log.Warn("applying network forwards", "network", name, "err", err)
	}
}

// hostHasAddress reports whether an interface of the host has ip.
func hostHasAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}

	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}

	return false
}
