package firewall

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

const portChainPrefix = "port-"

func bridgeTable(bridge string) *nftables.Table {
	return &nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyBridge}
}

func baseChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200),
	}
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
// replaces the port's previous rules, if any, in one atomic batch: a running container's
// port (refreshed when a new berthd starts) is never left unfiltered.
func PortAdd(bridge, port string, p Port) error {
	mac, ip := p.MAC, p.IP
	if ip.To4() == nil || len(mac) != 6 || (p.IP6 != nil && (p.IP6.To4() != nil || p.IP6.To16() == nil)) {
		return fmt.Errorf("filtering port %q: need an IPv4 address and a MAC, got %v and %v", port, ip, mac)
	}

	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	jumps, err := portJumps(c, bridgeTable(bridge), port)
	if err != nil {
		return err
	}

	t := c.AddTable(bridgeTable(bridge))
	base := c.AddChain(baseChain(t))
	ch := c.AddChain(&nftables.Chain{Name: portChainPrefix + port, Table: t})
	c.FlushChain(ch)
	for _, r := range portRules(p) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
	}

	sameKey := len(jumps) == 1 && portKey(jumps[0].UserData) == p.ACL
	if len(jumps) == 1 && !sameKey {
		// Another key: the jump is written again with it.
		err = c.DelRule(jumps[0])
		if err != nil {
			return fmt.Errorf("replacing jump to port %q: %w", port, err)
		}

		jumps = nil
	}

	if len(jumps) == 0 {
		c.AddRule(&nftables.Rule{
			Table: t, Chain: base, UserData: portUserData(port, p.ACL),
			Exprs: rule(metaIs(expr.MetaKeyIIFNAME, ifname(port)),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: ch.Name}}),
		})
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("adding filter of port %q: %w", port, err)
	}

	err = portACL(bridge, port, p.ACL, true, sameKey)
	if err != nil {
		return err
	}

	return nil
}

// PortDel removes a port's rules; a port without rules is fine.
func PortDel(bridge, port string) error {
	err := portACL(bridge, port, "", false, false)
	if err != nil {
		return err
	}

	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := bridgeTable(bridge)
	jumps, err := portJumps(c, t, port)
	if err != nil {
		return err
	}

	found := false
	for _, r := range jumps {
		err = c.DelRule(r)
		if err != nil {
			return fmt.Errorf("deleting jump to port %q: %w", port, err)
		}

		found = true
	}

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return fmt.Errorf("listing chains: %w", err)
	}

	for _, ch := range chains {
		if ch.Table.Name == t.Name && ch.Name == portChainPrefix+port {
			c.FlushChain(ch)
			c.DelChain(ch)
			found = true
		}
	}

	if !found {
		return nil
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("deleting filter of port %q: %w", port, err)
	}

	return nil
}

// portJumps returns the base chain's jumps to port's chain (none without the table).
func portJumps(c *nftables.Conn, t *nftables.Table, port string) ([]*nftables.Rule, error) {
	rules, err := c.GetRules(t, baseChain(t))
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("listing port rules of %s: %w", t.Name, err)
	}

	var out []*nftables.Rule
	for _, r := range rules {
		if portName(r.UserData) == port {
			out = append(out, r)
		}
	}

	return out, nil
}

// A port's jump in the base chain carries "<port>\x00<ACL key>" as user data (an older
// berthd's: "<port>", key "").
func portUserData(port, key string) []byte { return []byte(port + "\x00" + key) }

func portName(b []byte) string {
	name, _, _ := strings.Cut(string(b), "\x00")
	return name
}

func portKey(b []byte) string {
	_, key, _ := strings.Cut(string(b), "\x00")
	return key
}

// portKeys maps the filtered ports of a bridge table to their ACL keys.
func portKeys(c *nftables.Conn, t *nftables.Table) (map[string]string, error) {
	rules, err := c.GetRules(t, baseChain(t))
	if errors.Is(err, unix.ENOENT) {
		return map[string]string{}, nil
	}

	if err != nil {
		return nil, fmt.Errorf("listing port rules of %s: %w", t.Name, err)
	}

	out := map[string]string{}
	for _, r := range rules {
		if len(r.UserData) > 0 {
			out[portName(r.UserData)] = portKey(r.UserData)
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

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}

	out := []string{}
	for _, ch := range chains {
		if ch.Table.Name == TableName(bridge) && strings.HasPrefix(ch.Name, portChainPrefix) {
			out = append(out, strings.TrimPrefix(ch.Name, portChainPrefix))
		}
	}

	return out, nil
}
