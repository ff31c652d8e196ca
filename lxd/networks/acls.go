package networks

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// Network ACLs (LXD's): named rule sets a network applies to every NIC on it through
// security.acls, with default actions for what no rule matches. The database holds them;
// a change rewrites the rules of the networks that use ACLs. An ACL name in a rule's
// source or destination stands for the reserved addresses of the NICs on the networks
// that use that ACL, as they are when the rules are written.

// aclMaxCount caps the number of ACLs.
const aclMaxCount = 256

func aclURL(name string) string { return "/1.0/network-acls/" + url.PathEscape(name) }

// ACLETag is the ETag of an ACL.
func ACLETag(a *api.NetworkACL) any {
	return []any{a.Name, a.Description, a.Ingress, a.Egress, a.Config}
}

// aclUsers maps each ACL name to the URLs of the networks using it.
func aclUsers(nets []db.Network) map[string][]string {
	out := map[string][]string{}
	for _, n := range nets {
		for _, a := range network.ACLNames(n.Config) {
			out[a] = append(out[a], urlOf(n.Name))
		}
	}

	return out
}

func aclToAPI(a *db.NetworkACL, users []string) api.NetworkACL {
	out := api.NetworkACL{NetworkACLPost: api.NetworkACLPost{Name: a.Name}, NetworkACLPut: a.NetworkACLPut, UsedBy: users}
	if out.UsedBy == nil {
		out.UsedBy = []string{}
	}

	if out.Config == nil {
		out.Config = map[string]string{}
	}

	if out.Ingress == nil {
		out.Ingress = []api.NetworkACLRule{}
	}

	if out.Egress == nil {
		out.Egress = []api.NetworkACLRule{}
	}

	return out
}

// ACLs lists the network ACLs.
func (s *Service) ACLs(ctx context.Context) ([]api.NetworkACL, error) {
	out := []api.NetworkACL{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		acls, err := tx.GetNetworkACLs(ctx)
		if err != nil {
			return err
		}

		nets, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		users := aclUsers(nets)
		for i := range acls {
			out = append(out, aclToAPI(&acls[i], users[acls[i].Name]))
		}

		return nil
	})

	return out, err
}

// ACL returns one network ACL.
func (s *Service) ACL(ctx context.Context, name string) (*api.NetworkACL, error) {
	var out api.NetworkACL
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		a, err := tx.GetNetworkACL(ctx, name)
		if err != nil {
			return err
		}

		nets, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		out = aclToAPI(a, aclUsers(nets)[name])
		return nil
	})
	if err != nil {
		return nil, err
	}

	return &out, nil
}

// knownACLs returns a check of ACL names against tx's ACLs (plus extra, an ACL being made).
func knownACLs(ctx context.Context, tx *db.Tx, extra string) (func(string) bool, error) {
	acls, err := tx.GetNetworkACLs(ctx)
	if err != nil {
		return nil, err
	}

	names := map[string]bool{extra: extra != ""}
	for _, a := range acls {
		names[a.Name] = true
	}

	return func(n string) bool { return names[n] }, nil
}

// CreateACL makes a network ACL.
func (s *Service) CreateACL(ctx context.Context, req api.NetworkACLsPost) error {
	err := network.ValidACLName(req.Name)
	if err != nil {
		return badRequest("%v", err)
	}

	unlock := s.mgr.Lock()
	defer unlock()
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		acls, err := tx.GetNetworkACLs(ctx)
		if err != nil {
			return err
		}

		if len(acls) >= aclMaxCount {
			return badRequest("there are %d network ACLs, the most there may be", len(acls))
		}

		known, err := knownACLs(ctx, tx, req.Name)
		if err != nil {
			return err
		}

		err = validateACL(req.NetworkACLPut, known)
		if err != nil {
			return err
		}

		return tx.CreateNetworkACL(ctx, db.NetworkACL{Name: req.Name, NetworkACLPut: req.NetworkACLPut})
	})
	if err != nil {
		return err
	}

	s.emit("network-acl-created", aclURL(req.Name), nil)
	return nil
}

// UpdateACL applies a PUT (patch false: everything replaced) or a PATCH (config merged,
// rule lists replaced when given, an empty description kept), then rewrites the rules of
// the networks using ACLs; a rule set the kernel refuses records nothing.
func (s *Service) UpdateACL(ctx context.Context, name, ifMatch string, put api.NetworkACLPut, patch bool) error {
	unlock := s.mgr.Lock()
	defer unlock()
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetNetworkACL(ctx, name)
		if err != nil {
			return err
		}

		curAPI := aclToAPI(cur, nil)
		err = etag.Match(ifMatch, ACLETag(&curAPI))
		if err != nil {
			return err
		}

		if patch {
			config := maps.Clone(curAPI.Config)
			maps.Copy(config, put.Config)
			put.Config = config
			if put.Ingress == nil {
				put.Ingress = curAPI.Ingress
			}

			if put.Egress == nil {
				put.Egress = curAPI.Egress
			}

			if put.Description == "" {
				put.Description = curAPI.Description
			}
		}

		known, err := knownACLs(ctx, tx, "")
		if err != nil {
			return err
		}

		err = validateACL(put, known)
		if err != nil {
			return err
		}

		err = tx.UpdateNetworkACL(ctx, db.NetworkACL{Name: name, NetworkACLPut: put})
		if err != nil {
			return err
		}

		return s.applyAllACLsTx(ctx, tx)
	})
	if err != nil {
		return err
	}

	s.emit("network-acl-updated", aclURL(name), nil)
	return nil
}

// refusedInUse is the error for renaming or deleting an ACL a network or another ACL uses.
func aclInUse(ctx context.Context, tx *db.Tx, name string) error {
	nets, err := tx.GetNetworks(ctx)
	if err != nil {
		return err
	}

	if users := aclUsers(nets)[name]; len(users) > 0 {
		return badRequest("network ACL %q is in use by %v", name, users)
	}

	acls, err := tx.GetNetworkACLs(ctx)
	if err != nil {
		return err
	}

	for _, a := range acls {
		for _, r := range slices.Concat(a.Ingress, a.Egress) {
			for _, f := range []string{r.Source, r.Destination} {
				for _, it := range splitList(f) {
					if it == name && a.Name != name {
						return badRequest("network ACL %q is referenced by network ACL %q", name, a.Name)
					}
				}
			}
		}
	}

	return nil
}

// RenameACL renames an ACL that nothing uses (400 otherwise, as LXD).
func (s *Service) RenameACL(ctx context.Context, name, newName string) error {
	err := network.ValidACLName(newName)
	if err != nil {
		return badRequest("%v", err)
	}

	unlock := s.mgr.Lock()
	defer unlock()
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetNetworkACL(ctx, name)
		if err != nil {
			return err
		}

		err = aclInUse(ctx, tx, name)
		if err != nil {
			return err
		}

		return tx.RenameNetworkACL(ctx, name, newName)
	})
	if err != nil {
		return err
	}

	s.emit("network-acl-renamed", aclURL(newName), map[string]any{"old_name": name})
	return nil
}

// DeleteACL deletes an ACL that nothing uses (400 otherwise, as LXD).
func (s *Service) DeleteACL(ctx context.Context, name string) error {
	unlock := s.mgr.Lock()
	defer unlock()
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetNetworkACL(ctx, name)
		if err != nil {
			return err
		}

		err = aclInUse(ctx, tx, name)
		if err != nil {
			return err
		}

		return tx.DeleteNetworkACL(ctx, name)
	})
	if err != nil {
		return err
	}

	s.emit("network-acl-deleted", aclURL(name), nil)
	return nil
}

// checkACLConfig checks that the ACLs a network config names exist.
func (s *Service) checkACLConfig(ctx context.Context, config map[string]string) error {
	names := network.ACLNames(config)
	if len(names) == 0 {
		return nil
	}

	return s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for _, n := range names {
			_, err := tx.GetNetworkACL(ctx, n)
			if api.StatusErrorCheck(err, http.StatusNotFound) {
				return badRequest("invalid network config \"security.acls\": no network ACL %q", n)
			}

			if err != nil {
				return err
			}
		}

		return nil
	})
}

// applyAllACLsTx rewrites the ACL rules of every managed network as tx sees them.
func (s *Service) applyAllACLsTx(ctx context.Context, tx *db.Tx) error {
	nets, err := tx.GetNetworks(ctx)
	if err != nil {
		return err
	}

	for i := range nets {
		err := s.applyACLsTx(ctx, tx, &nets[i], nets)
		if err != nil {
			return err
		}
	}

	return nil
}

// applyACLsTx writes the ACL rules of network n (none without security.acls).
func (s *Service) applyACLsTx(ctx context.Context, tx *db.Tx, n *db.Network, nets []db.Network) error {
	names := network.ACLNames(n.Config)
	if len(names) == 0 {
		return firewall.ApplyACLs(n.Name, nil)
	}

	a := addrsOf(n.Config)
	set := &firewall.ACLSet{
		Gateway: a.gw, Gateway6: a.gw6,
		IngressDrop: n.Config["security.acls.default.ingress.action"] != "allow",
		EgressDrop:  n.Config["security.acls.default.egress.action"] != "allow",
	}

	resolve := func(acl string) ([]firewall.ACLAddr, error) { return s.aclAddrs(acl, nets), nil }
	var drops [2][]firewall.ACLRule
	var allows [2][]firewall.ACLRule
	total := 0
	for _, name := range names {
		acl, err := tx.GetNetworkACL(ctx, name)
		if err != nil {
			return err
		}

		for d, rules := range [2][]api.NetworkACLRule{acl.Ingress, acl.Egress} {
			for _, r := range rules {
				compiled, err := compileRule(r, resolve)
				if err != nil {
					return badRequest("network ACL %s: %v", name, err)
				}

				total += len(compiled)
				if total > maxCompiled {
					return badRequest("the ACLs of network %s expand to more than %d rules", n.Name, maxCompiled)
				}

				for _, c := range compiled {
					if c.Drop {
						drops[d] = append(drops[d], c)
					} else {
						allows[d] = append(allows[d], c)
					}
				}
			}
		}
	}

	// LXD's order: drop and reject before allow, then the default.
	set.Ingress = append(drops[0], allows[0]...)
	set.Egress = append(drops[1], allows[1]...)
	return firewall.ApplyACLs(n.Name, set)
}

// aclAddrs is what an ACL name stands for in a rule: the reserved addresses of the NICs on
// the networks that use it.
func (s *Service) aclAddrs(acl string, nets []db.Network) []firewall.ACLAddr {
	out := []firewall.ACLAddr{}
	for _, n := range nets {
		if !slices.Contains(network.ACLNames(n.Config), acl) {
			continue
		}

		leases, err := s.mgr.Leases(n.Name)
		if err != nil {
			continue
		}

		for _, l := range leases {
			ip := net.ParseIP(l.Address)
			if ip != nil && (l.Type == "static" || ip.To4() == nil) {
				out = append(out, firewall.ACLAddr{From: norm(ip), To: norm(ip)})
			}
		}
	}

	return out
}

// applyACLs rewrites the ACL rules of every network (a network started, changed or
// renamed); failures are logged.
func (s *Service) applyACLs(ctx context.Context) {
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return s.applyAllACLsTx(ctx, tx)
	})
	if err != nil {
		s.log.Warn("applying network ACLs", "err", err)
	}
}

func splitList(s string) []string {
	out := []string{}
	for _, it := range splitComma(s) {
		if it != "" {
			out = append(out, it)
		}
	}

	return out
}
