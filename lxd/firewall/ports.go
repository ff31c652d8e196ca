package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

const (
	portChainPrefix = "port-"
	portMapName     = "ports" // iifname → jump port-<iifname>
)

func bridgeTable(bridge string) *nftables.Table {
	return &nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyBridge}
}

func baseChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200),
	}
}

// The base chains find a port's chain in a verdict map keyed by interface name (one hash
// lookup per frame, and one element to add or delete per port) rather than in a list of
// one "iifname X jump" rule per port, which every frame walked and every PortAdd listed.

// verdictMap is a map from interface name to a jump.
func verdictMap(t *nftables.Table, name string) *nftables.Set {
	return &nftables.Set{Table: t, Name: name, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}
}

// vmapRule: meta key vmap @m.
func vmapRule(key expr.MetaKey, m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: m.Name, SetID: m.ID, IsDestRegSet: true, DestRegister: 0},
	}
}

func isVmapRule(r *nftables.Rule, m string) bool {
	for _, e := range r.Exprs {
		if l, ok := e.(*expr.Lookup); ok && l.SetName == m && l.IsDestRegSet {
			return true
		}
	}

	return false
}

func jumpElem(port, chain string) []nftables.SetElement {
	return []nftables.SetElement{{Key: ifname(port), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}

// lastingConn opens one netlink socket for all of an operation's reads and its batch
// (a plain Conn dials one per call).
func lastingConn() (*nftables.Conn, func(), error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, nil, fmt.Errorf("opening nftables: %w", err)
	}

	return c, func() { _ = c.CloseLasting() }, nil
}

// delElem deletes port's element jumping to chain from m, whether it is there or not: the
// add is a no-op when it is, and an error-free delete needs an element to delete.
func delElem(c *nftables.Conn, m *nftables.Set, port, chain string) error {
	err := c.SetAddElements(m, jumpElem(port, chain))
	if err == nil {
		err = c.SetDeleteElements(m, jumpElem(port, chain))
	}

	if err != nil {
		return fmt.Errorf("deleting %s from map %s: %w", port, m.Name, err)
	}

	return nil
}

// Port is what the container behind a port may send as.
type Port struct {
	MAC net.HardwareAddr
	IP  net.IP // IPv4
	IP6 net.IP // its address in the network's IPv6 prefix, nil without one
	ACL string // its ACL key: which rules ApplyACLs gives it (opaque here)
}

// PortAdd makes frames that enter the bridge from port (a container's host veth) pass only
// as ARP, IPv4 or IPv6 with the container's MAC and addresses (portRules has the details):
// IPv4 from its address (DHCP and ARP probes from 0.0.0.0, DHCP only for its own MAC);
// IPv6 from its IP6, its own link-local address, or :: for what needs it (duplicate
// address detection, router solicitations, MLD); neighbour discovery only with its own MAC
// as link-layer address and advertising only its own addresses. A container may not serve
// its neighbours' configuration: DHCP replies, IPv6 router advertisements, redirects and
// DHCPv6 replies from it are dropped (they would make it their gateway or DNS). It
// replaces the port's previous rules and ACL jumps, if any, in one atomic batch: a running
// container's port (refreshed when a new berthd starts) is never left unfiltered. Neither
// writing a port nor the check that leaves an unchanged one (below) costs more on a bridge
// with more ports.
//
// It reports whether it wrote anything. A port whose chain holds the rules it would write,
// for the same ACL key, and which the port map sends to that chain, is left as it is: a
// restarting berthd refreshes the port of every running container, and rewriting hundreds
// of unchanged chains, a netlink batch and a check of the whole table each, competed with
// the adoption of the containers for the CPU. Anything else is written again, whole (a
// rule changed or deleted by hand, a missing map element, an older berthd's rules).
func PortAdd(bridge, port string, p Port) (bool, error) {
	mac, ip := p.MAC, p.IP
	if ip.To4() == nil || len(mac) != 6 || (p.IP6 != nil && (p.IP6.To4() != nil || p.IP6.To16() == nil)) {
		return false, fmt.Errorf("filtering port %q: need an IPv4 address and a MAC, got %v and %v", port, ip, mac)
	}

	c, done, err := lastingConn()
	if err != nil {
		return false, err
	}

	defer done()
	t := bridgeTable(bridge)
	fresh, err := portLayout(c, t)
	if err != nil {
		return false, err
	}

	cur, err := portChainRules(c, t, port)
	if err != nil {
		return false, err
	}

	rules := portRules(p)
	chain := portChainPrefix + port
	if !fresh && holds(cur, rules, portUserData(port, p.ACL)) {
		// A check that fails leaves the port to be written again, whole: that is atomic
		// and the same as leaving it, where it was in place.
		ok, err := mapped(verdictMap(t, portMapName), port, chain)
		if err == nil && ok {
			return false, nil
		}
	}

	oldKey, had := "", len(cur) > 0
	if had {
		oldKey = portKey(cur[0].UserData)
	}

	t = c.AddTable(t)
	base := c.AddChain(baseChain(t))
	ports := verdictMap(t, portMapName)
	err = c.AddSet(ports, nil)
	if err != nil {
		return false, fmt.Errorf("adding the port map of %s: %w", bridge, err)
	}

	if fresh {
		c.AddRule(&nftables.Rule{Table: t, Chain: base, Exprs: vmapRule(expr.MetaKeyIIFNAME, ports)})
	}

	ch := c.AddChain(&nftables.Chain{Name: chain, Table: t})
	c.FlushChain(ch)
	for i, r := range rules {
		nr := &nftables.Rule{Table: t, Chain: ch, Exprs: r}
		if i == 0 {
			nr.UserData = portUserData(port, p.ACL)
		}

		c.AddRule(nr)
	}

	err = c.SetAddElements(ports, jumpElem(port, ch.Name))
	if err != nil {
		return false, fmt.Errorf("adding port %q to the port map: %w", port, err)
	}

	err = portACL(c, t, port, oldKey, had, p.ACL, true)
	if err != nil {
		return false, err
	}

	err = c.Flush()
	if err != nil {
		return false, fmt.Errorf("adding filter of port %q: %w", port, err)
	}

	return true, nil
}

// holds reports whether a port chain's rules, as the kernel lists them (cur), are the ones
// PortAdd would write (want): as many, the same port and ACL key on the first, and every
// expression encoded to the same bytes. What berthd writes decodes back to what was
// written (google/nftables v0.3.0, kernel 6.18: all of a port's rules).
//
// What this repairs at a restart is what berthd's own failures or a careless edit on the
// host leave: a flushed table, a rule or map element deleted, a rule replaced. Not a
// deliberate one: the library drops expressions it cannot decode (byteorder, rt, socket,
// among others), so a rule someone extended with one of those lists as it was. Only host
// root can write these tables, and host root is trusted; a container cannot reach them.
func holds(cur []*nftables.Rule, want [][]expr.Any, first []byte) bool {
	if len(cur) != len(want) || len(cur) == 0 || !bytes.Equal(cur[0].UserData, first) {
		return false
	}

	fam := byte(nftables.TableFamilyBridge)
	for i, r := range want {
		if len(cur[i].Exprs) != len(r) {
			return false
		}

		for j, e := range r {
			a, errA := expr.Marshal(fam, e)
			b, errB := expr.Marshal(fam, cur[i].Exprs[j])
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				return false
			}
		}
	}

	return true
}

// mapped reports whether the port map sends port's frames to chain.
func mapped(m *nftables.Set, port, chain string) (bool, error) {
	data, found, err := mapElem(m, port)
	if err != nil || !found {
		return false, err
	}

	return elemJump(nftables.SetElement{Val: data}) == chain, nil
}

// elemJump is the chain a verdict map element jumps to: the library leaves the verdict
// undecoded in Val, as netlink attributes (NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN).
func elemJump(e nftables.SetElement) string {
	code, chain := int32(0), ""
	for b := e.Val; len(b) >= 4; {
		n := int(binary.NativeEndian.Uint16(b))
		if n < 4 || n > len(b) {
			return ""
		}

		data := b[4:n]
		switch binary.NativeEndian.Uint16(b[2:]) & 0x3fff { // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
		case unix.NFTA_VERDICT_CODE:
			if len(data) == 4 {
				code = int32(binary.BigEndian.Uint32(data))
			}
		case unix.NFTA_VERDICT_CHAIN:
			chain = strings.TrimRight(string(data), "\x00")
		}

		b = b[min((n+3)&^3, len(b)):]
	}

	if code != unix.NFT_JUMP {
		return ""
	}

	return chain
}

// PortDel removes a port's rules; a port without rules is fine.
func PortDel(bridge, port string) error {
	c, done, err := lastingConn()
	if err != nil {
		return err
	}

	defer done()
	t := bridgeTable(bridge)
	_, err = portLayout(c, t)
	if err != nil {
		return err
	}

	oldKey, had, err := portKeyOf(c, t, port)
	if err != nil || !had {
		return err
	}

	err = portACL(c, t, port, oldKey, true, "", false)
	if err != nil {
		return err
	}

	ch := &nftables.Chain{Name: portChainPrefix + port, Table: t}
	err = delElem(c, verdictMap(t, portMapName), port, ch.Name)
	if err != nil {
		return err
	}

	c.FlushChain(ch)
	c.DelChain(ch)
	err = c.Flush()
	if err != nil {
		return fmt.Errorf("deleting filter of port %q: %w", port, err)
	}

	return nil
}

// A port's chain carries "<port>\x00<ACL key>" as the user data of its first rule.
func portUserData(port, key string) []byte { return []byte(port + "\x00" + key) }

func portName(b []byte) string {
	name, _, _ := strings.Cut(string(b), "\x00")
	return name
}

func portKey(b []byte) string {
	_, key, _ := strings.Cut(string(b), "\x00")
	return key
}

// portKeyOf reads the ACL key of port's chain (had false: the port has no chain). A dump
// of a chain or table that does not exist is empty, not an error.
func portKeyOf(c *nftables.Conn, t *nftables.Table, port string) (string, bool, error) {
	rules, err := portChainRules(c, t, port)
	if err != nil || len(rules) == 0 {
		return "", false, err
	}

	return portKey(rules[0].UserData), true, nil
}

// portChainRules lists the rules of port's chain (none: the port has no chain).
func portChainRules(c *nftables.Conn, t *nftables.Table, port string) ([]*nftables.Rule, error) {
	rules, err := c.GetRules(t, &nftables.Chain{Name: portChainPrefix + port, Table: t})
	if err != nil {
		return nil, fmt.Errorf("listing the rules of port %q: %w", port, err)
	}

	return rules, nil
}

// portChains lists the port chains of a bridge table.
func portChains(c *nftables.Conn, t *nftables.Table) ([]string, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}

	out := []string{}
	for _, ch := range chains {
		if ch.Table.Name == t.Name && strings.HasPrefix(ch.Name, portChainPrefix) {
			out = append(out, strings.TrimPrefix(ch.Name, portChainPrefix))
		}
	}

	return out, nil
}

// portKeys maps the filtered ports of a bridge table to their ACL keys (one read per port:
// for ApplyACLs, which writes every port's jumps anyway).
func portKeys(c *nftables.Conn, t *nftables.Table) (map[string]string, error) {
	names, err := portChains(c, t)
	if err != nil {
		return nil, err
	}

	out := map[string]string{}
	for _, p := range names {
		key, had, err := portKeyOf(c, t, p)
		if err != nil {
			return nil, err
		}

		if had {
			out[p] = key
		}
	}

	return out, nil
}

// Ports lists the ports that have rules on a bridge network.
func Ports(bridge string) ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}

	return portChains(c, bridgeTable(bridge))
}
