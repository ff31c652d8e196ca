package networks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
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

// aclUsers maps each ACL name to the URLs of what uses it: networks (security.acls),
// profiles and instances whose NIC devices name it (an instance's own devices; one that
// has it through a profile is covered by the profile).
func aclUsers(ctx context.Context, tx *db.Tx, nets []db.Network) (map[string][]string, error) {
	out := map[string][]string{}
	for _, n := range nets {
		for _, a := range network.ACLNames(n.Config) {
			out[a] = append(out[a], urlOf(n.Name))
		}
	}

	nicUsers := func(url string, devices map[string]map[string]string) {
		seen := map[string]bool{}
		for _, d := range devices {
			if d["type"] != "nic" {
				continue
			}

			for _, a := range network.ACLNames(d) {
				if !seen[a] {
					seen[a] = true
					out[a] = append(out[a], url)
				}
			}
		}
	}

	profiles, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	for _, p := range profiles {
		nicUsers(project.ProfileURL(p.Name), p.Devices)
	}

	insts, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	for _, in := range insts {
		nicUsers(projects.InstanceURL(in.Name), in.Devices)
	}

	return out, nil
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

		users, err := aclUsers(ctx, tx, nets)
		if err != nil {
			return err
		}

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

		users, err := aclUsers(ctx, tx, nets)
		if err != nil {
			return err
		}

		out = aclToAPI(a, users[name])
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
	written := false
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

		written = true
		return s.applyAllACLsTx(ctx, tx)
	})
	if err != nil {
		// The networks the kernel took the new rules for keep them, and the database
		// rolled back: write every network's rules again from what it holds, whether or
		// not the client is still there.
		if written {
			s.applyACLs(context.WithoutCancel(ctx))
		}

		return err
	}

	s.emit("network-acl-updated", aclURL(name), nil)
	return nil
}

// aclInUse is the error for renaming or deleting an ACL that a network, a NIC or another
// ACL uses.
func aclInUse(ctx context.Context, tx *db.Tx, name string) error {
	nets, err := tx.GetNetworks(ctx)
	if err != nil {
		return err
	}

	users, err := aclUsers(ctx, tx, nets)
	if err != nil {
		return err
	}

	if users := users[name]; len(users) > 0 {
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

	// One network's failure does not keep the others' rules from being written.
	var errs []error
	for i := range nets {
		err := s.applyACLsTx(ctx, tx, &nets[i], nets)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", nets[i].Name, err))
		}
	}

	return errors.Join(errs...)
}

// maxCompiledPorts caps the nftables rules of all the sets of one network's ports.
const maxCompiledPorts = 4 * maxCompiled

// applyACLsTx writes the ACL rules of network n's ports (writeACLsTx) and tells the
// network whether that succeeded: after a failure, its next port writes them again.
func (s *Service) applyACLsTx(ctx context.Context, tx *db.Tx, n *db.Network, nets []db.Network) error {
	err := s.writeACLsTx(ctx, tx, n, nets)
	s.mgr.ACLsWritten(n.Name, err == nil)
	return err
}

// writeACLsTx writes the ACL rules of network n's ports: each port gets the network's
// ACLs and its NIC's (security.acls on the nic device), with the NIC's default actions
// where it sets them, else the network's, else reject (LXD's default). A port with no ACL
// at all is not filtered.
func (s *Service) writeACLsTx(ctx context.Context, tx *db.Tx, n *db.Network, nets []db.Network) error {
	exist, err := tx.HasNetworkACLs(ctx)
	if err != nil {
		return err
	}

	if !exist {
		// None to filter by: the firewall need not read what each port asks for. A port
		// whose key still names an ACL (the database restored behind running containers)
		// loses its jumps here, where compiling that ACL failed before and kept them: the
		// database, which checks every reference, says no ACL applies.
		return firewall.ApplyACLs(n.Name, nil)
	}

	a := addrsOf(n.Config)
	resolve := func(acl string) ([]firewall.ACLAddr, error) { return s.aclAddrs(acl, nets), nil }
	cache := map[string][2][]firewall.ACLRule{} // compiled ingress, egress of each ACL
	total := 0
	sets := func(key string) (*firewall.ACLSet, error) {
		p := network.ParsePortACL(key)
		names := network.ACLNames(n.Config)
		for _, name := range p.Names {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}

		if len(names) == 0 {
			return nil, nil
		}

		in := cmp.Or(p.Ingress, n.Config["security.acls.default.ingress.action"], "reject")
		out := cmp.Or(p.Egress, n.Config["security.acls.default.egress.action"], "reject")
		set := &firewall.ACLSet{
			Gateway: a.gw, Gateway6: a.gw6,
			IngressDrop: in != "allow", IngressReject: in == "reject",
			EgressDrop: out != "allow", EgressReject: out == "reject",
		}

		var drops, allows [2][]firewall.ACLRule
		for _, name := range names {
			rules, ok := cache[name]
			if !ok {
				var err error
				rules, err = compileACL(ctx, tx, name, resolve)
				if err != nil {
					return nil, err
				}

				cache[name] = rules
			}

			for d := range rules {
				total += len(rules[d])
				if total > maxCompiledPorts {
					return nil, badRequest("the ACLs of network %s expand to more than %d rules", n.Name, maxCompiledPorts)
				}

				for _, c := range rules[d] {
					if c.Drop {
						drops[d] = append(drops[d], c)
					} else {
						allows[d] = append(allows[d], c)
					}
				}
			}
		}

		// LXD's order: drop and reject before allow, then the default.
		set.Ingress = append(drops[0], allows[0]...)
		set.Egress = append(drops[1], allows[1]...)
		return set, nil
	}

	return firewall.ApplyACLs(n.Name, sets)
}

// compileACL compiles the ingress and egress rules of one ACL.
func compileACL(ctx context.Context, tx *db.Tx, name string, resolve func(string) ([]firewall.ACLAddr, error)) ([2][]firewall.ACLRule, error) {
	var out [2][]firewall.ACLRule
	acl, err := tx.GetNetworkACL(ctx, name)
	if err != nil {
		return out, err
	}

	for d, rules := range [2][]api.NetworkACLRule{acl.Ingress, acl.Egress} {
		for _, r := range rules {
			compiled, err := compileRule(r, resolve)
			if err != nil {
				return out, badRequest("network ACL %s: %v", name, err)
			}

			out[d] = append(out[d], compiled...)
			if len(out[d]) > maxCompiled {
				return out, badRequest("network ACL %s expands to more than %d rules", name, maxCompiled)
			}
		}
	}

	return out, nil
}

// applyBridgeACLs rewrites the ACL rules of one network's ports (a port came with ACLs, or
// the network has some): for network.ACLHooks, under the manager's lock.
func (s *Service) applyBridgeACLs(bridge string) error {
	unlock := s.mgr.Lock()
	defer unlock()
	ctx := context.Background()
	return s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		nets, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		for i := range nets {
			if nets[i].Name == bridge {
				return s.applyACLsTx(ctx, tx, &nets[i], nets)
			}
		}

		return nil
	})
}

// checkACLNames refuses names that are not ACLs (400): for network.ACLHooks.
func (s *Service) checkACLNames(names []string) error {
	ctx := context.Background()
	return s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for _, n := range names {
			_, err := tx.GetNetworkACL(ctx, n)
			if api.StatusErrorCheck(err, http.StatusNotFound) {
				return badRequest("invalid security.acls: no network ACL %q", n)
			}

			if err != nil {
				return err
			}
		}

		return nil
	})
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
