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

const (
	portChainPrefix = "port-"
	etherTypeIPv4   = 0x0800
	etherTypeARP    = 0x0806
	etherTypeVLAN   = 0x8100
	etherTypeIPv6   = 0x86dd

	icmpv6RouterAdvert   = 134
	icmpv6NeighborAdvert = 136
	icmpv6Redirect       = 137
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

// Port is what the container behind a port may send as.
type Port struct {
	MAC net.HardwareAddr
	IP  net.IP // IPv4
	IP6 net.IP // its address in the network's IPv6 prefix, nil without one
}

// PortAdd makes frames that enter the bridge from port (a container's host veth) pass only
// with the container's MAC and IPv4 address; DHCP requests from 0.0.0.0 and ARP probes are
// let through. IPv6 may come from its IP6, a link-local address or :: (duplicate address
// detection), and its neighbour advertisements may only claim those. A container may not
// serve its neighbours' configuration: DHCP replies, IPv6 router advertisements, redirects
// and DHCPv6 replies from it are dropped (they would make it their gateway or DNS). It
// replaces the port's previous rules, if any, in one atomic batch: a running container's
// port (refreshed when a new berthd starts) is never left unfiltered.
func PortAdd(bridge, port string, p Port) error {
	mac, ip := p.MAC, p.IP
	if ip.To4() == nil || len(mac) != 6 || (p.IP6 != nil && p.IP6.To4() != nil) {
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
	ip4 := []byte(ip.To4())
	zero := []byte{0, 0, 0, 0}
	zero6 := make([]byte, 16)
	linkLocal := net.IPNet{IP: net.ParseIP("fe80::"), Mask: net.CIDRMask(10, 128)}
	drop := []expr.Any{verdict(expr.VerdictDrop)}
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	ll, nh, th := expr.PayloadBaseLLHeader, expr.PayloadBaseNetworkHeader, expr.PayloadBaseTransportHeader

	rules := [][]expr.Any{
		// Any frame: its source MAC. No VLAN tags (their payload would escape the checks).
		rule(payloadCmp(ll, 6, 6, expr.CmpOpNeq, mac), drop),
		rule(etherType(etherTypeVLAN), drop),
		// ARP: sender MAC, then sender address (0.0.0.0 is a probe, RFC 5227).
		rule(etherType(etherTypeARP), payloadCmp(nh, 8, 6, expr.CmpOpNeq, mac), drop),
		rule(etherType(etherTypeARP), payloadCmp(nh, 14, 4, expr.CmpOpEq, zero), accept),
		rule(etherType(etherTypeARP), payloadCmp(nh, 14, 4, expr.CmpOpNeq, ip4), drop),
		// IPv4: DHCP from 0.0.0.0 to the server port, else the reserved address only.
		rule(etherType(etherTypeIPv4), payloadCmp(nh, 12, 4, expr.CmpOpEq, zero),
			payloadCmp(nh, 9, 1, expr.CmpOpEq, []byte{unix.IPPROTO_UDP}),
			payloadCmp(th, 2, 2, expr.CmpOpEq, []byte{0, 67}), accept),
		rule(etherType(etherTypeIPv4), payloadCmp(nh, 12, 4, expr.CmpOpNeq, ip4), drop),
		rule(etherType(etherTypeIPv4), l4proto(unix.IPPROTO_UDP), payloadCmp(th, 0, 2, expr.CmpOpEq, []byte{0, 67}), drop),
		// IPv6 (l4proto looks past extension headers): no router, redirect or DHCPv6 server.
		rule(etherType(etherTypeIPv6), l4proto(unix.IPPROTO_ICMPV6), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{icmpv6RouterAdvert}), drop),
		rule(etherType(etherTypeIPv6), l4proto(unix.IPPROTO_ICMPV6), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{icmpv6Redirect}), drop),
		rule(etherType(etherTypeIPv6), l4proto(unix.IPPROTO_UDP), payloadCmp(th, 0, 2, expr.CmpOpEq, []byte{2, 35}), drop), // 547
	}

	// Neighbour advertisements claim only link-local addresses or its own (target at 8).
	na := []expr.Any{}
	na = append(na, etherType(etherTypeIPv6)...)
	na = append(na, l4proto(unix.IPPROTO_ICMPV6)...)
	na = append(na, payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{icmpv6NeighborAdvert})...)
	na = append(na, inSubnet(th, 8, expr.CmpOpNeq, &linkLocal)...)
	if p.IP6 != nil {
		na = append(na, payloadCmp(th, 8, 16, expr.CmpOpNeq, p.IP6.To16())...)
	}

	rules = append(rules, rule(na, drop),
		rule(etherType(etherTypeIPv6), payloadCmp(nh, 8, 16, expr.CmpOpEq, zero6), accept))
	if p.IP6 != nil {
		rules = append(rules, rule(etherType(etherTypeIPv6), payloadCmp(nh, 8, 16, expr.CmpOpEq, p.IP6.To16()), accept))
	}

	rules = append(rules, rule(etherType(etherTypeIPv6), inSubnet(nh, 8, expr.CmpOpNeq, &linkLocal), drop))

	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
	}

	if len(jumps) == 0 {
		c.AddRule(&nftables.Rule{
			Table: t, Chain: base, UserData: []byte(port),
			Exprs: rule(metaIs(expr.MetaKeyIIFNAME, ifname(port)),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: ch.Name}}),
		})
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("adding filter of port %q: %w", port, err)
	}

	return nil
}

// PortDel removes a port's rules; a port without rules is fine.
func PortDel(bridge, port string) error {
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
		if string(r.UserData) == port {
			out = append(out, r)
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
