package firewall

import (
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Network ACLs on a bridge's ports, in its bridge table: egress is what a port sends into
// the bridge (prerouting), ingress what the bridge sends out of a port (forward: from
// another port; output: from the host). The bridge family has no connection tracking and
// no reject on this kernel generation (NF_CONNTRACK_BRIDGE and NFT_BRIDGE_REJECT are often
// left out), so the rules are stateless and "reject" drops; replies to what a port was
// allowed to send are recognised statelessly: TCP segments with ACK set, ICMP errors and
// echo replies, and the network's DHCP and DNS answers.

// ACLAddr is an inclusive address range of one family.
type ACLAddr struct{ From, To net.IP }

// ACLRule is one compiled rule: every set field must match.
type ACLRule struct {
	Drop     bool     // else accept
	Source   *ACLAddr // nil: any
	Dest     *ACLAddr
	Family   byte // unix.NFPROTO_IPV4 or _IPV6; 0 when neither address nor protocol fixes it
	Protocol byte // IPPROTO_TCP, _UDP, _ICMP, _ICMPV6; 0: any
	SrcPorts [2]uint16
	DstPorts [2]uint16 // [0,0]: any
	ICMPType int       // -1: any
	ICMPCode int       // -1: any
}

// ACLSet is everything applied to a bridge's ports. Ingress and Egress are in evaluation
// order (drop rules first, then allow: LXD's order); the defaults decide the rest.
type ACLSet struct {
	Gateway, Gateway6       net.IP // the network's addresses: DHCP, DNS and neighbour discovery always pass
	Ingress, Egress         []ACLRule
	IngressDrop, EgressDrop bool // default actions
}

// Chains: the base chains jump, for each port of the bridge (this kernel generation often
// lacks the bridge-name match, NFT_BRIDGE_META), to the rules of each direction.
const (
	aclEgress     = "acl-egress"
	aclIngressFwd = "acl-ingress-forward"
	aclIngressOut = "acl-ingress-output"
	aclOut        = "acl-out" // what ports send
	aclIn         = "acl-in"  // what ports receive
)

func aclBase(t *nftables.Table) []*nftables.Chain {
	mk := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio}
	}

	return []*nftables.Chain{
		mk(aclEgress, nftables.ChainHookPrerouting, nftables.ChainPriorityRef(-150)),
		mk(aclIngressFwd, nftables.ChainHookForward, nftables.ChainPriorityFilter),
		mk(aclIngressOut, nftables.ChainHookOutput, nftables.ChainPriorityFilter),
	}
}

// ApplyACLs replaces the ACL rules of a bridge's ports in one atomic batch; nil removes
// the filtering (empty chains). Ports added later get their jumps from PortAdd.
func ApplyACLs(bridge string, set *ACLSet) error {
	ports, err := Ports(bridge)
	if err != nil {
		return err
	}

	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := c.AddTable(bridgeTable(bridge))
	base := aclBase(t)
	for _, ch := range base {
		c.AddChain(ch)
		c.FlushChain(ch)
	}

	out := c.AddChain(&nftables.Chain{Name: aclOut, Table: t})
	in := c.AddChain(&nftables.Chain{Name: aclIn, Table: t})
	c.FlushChain(out)
	c.FlushChain(in)
	if set != nil {
		for _, r := range aclChain(set, set.Egress, set.EgressDrop, false) {
			c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: r})
		}

		for _, r := range aclChain(set, set.Ingress, set.IngressDrop, true) {
			c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: r})
		}

		for _, p := range ports {
			addACLJumps(c, t, base, p)
		}
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing ACLs of %s: %w", bridge, err)
	}

	return nil
}

// addACLJumps sends what port sends to acl-out and what it receives to acl-in.
func addACLJumps(c *nftables.Conn, t *nftables.Table, base []*nftables.Chain, port string) {
	jump := func(ch *nftables.Chain, key expr.MetaKey, to string) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, UserData: []byte(port), Exprs: rule(
			metaIs(key, ifname(port)), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: to}})})
	}

	jump(base[0], expr.MetaKeyIIFNAME, aclOut)
	jump(base[1], expr.MetaKeyOIFNAME, aclIn)
	jump(base[2], expr.MetaKeyOIFNAME, aclIn)
}

// aclPortJumps returns port's jumps in the ACL base chains, and whether the bridge has
// ACL rules (then a new port needs jumps).
func aclPortJumps(c *nftables.Conn, t *nftables.Table, port string) ([]*nftables.Rule, bool, error) {
	var out []*nftables.Rule
	active := false
	rules, err := c.GetRules(t, &nftables.Chain{Name: aclOut, Table: t})
	if err == nil && len(rules) > 0 {
		active = true
	}

	for _, ch := range aclBase(t) {
		rules, err := c.GetRules(t, ch)
		if errors.Is(err, unix.ENOENT) {
			continue
		}

		if err != nil {
			return nil, false, fmt.Errorf("listing ACL jumps of %s: %w", t.Name, err)
		}

		for _, r := range rules {
			if string(r.UserData) == port {
				out = append(out, r)
			}
		}
	}

	return out, active, nil
}

// portACL replaces port's ACL jumps: removed, and added again when the bridge has ACLs
// (add false: only removed).
func portACL(bridge, port string, add bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := bridgeTable(bridge)
	jumps, active, err := aclPortJumps(c, t, port)
	if err != nil {
		return err
	}

	if len(jumps) == 0 && !(add && active) {
		return nil
	}

	for _, r := range jumps {
		err = c.DelRule(r)
		if err != nil {
			return fmt.Errorf("deleting ACL jump of port %q: %w", port, err)
		}
	}

	if add && active {
		addACLJumps(c, t, aclBase(t), port)
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing ACL jumps of port %q: %w", port, err)
	}

	return nil
}

// aclChain is one direction's rules: non-IP frames pass, then the baseline, the rules,
// the default.
func aclChain(set *ACLSet, rules []ACLRule, defDrop, ingress bool) [][]expr.Any {
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	drop := []expr.Any{verdict(expr.VerdictDrop)}
	th := expr.PayloadBaseTransportHeader
	ipv4, ipv6 := etherType(etherTypeIPv4), etherType(etherTypeIPv6)
	out := [][]expr.Any{
		rule(payloadCmp(expr.PayloadBaseLLHeader, 12, 2, expr.CmpOpNeq, []byte{0x08, 0x00}), alsoCmp(expr.CmpOpNeq, []byte{0x86, 0xdd}), accept),
		// Neighbour discovery, router solicitations and advertisements, MLD.
		rule(ipv6, l4proto(unix.IPPROTO_ICMPV6), payloadRange(th, 0, []byte{130}, []byte{143}), accept),
	}

	// DHCP and DNS with the network (to it on egress, from it on ingress).
	gwOff, portOff := uint32(16), uint32(2)
	if ingress {
		gwOff, portOff = 12, 0
	}

	if set.Gateway != nil {
		gw := set.Gateway.To4()
		out = append(out,
			rule(ipv4, l4proto(unix.IPPROTO_UDP), payloadCmp(th, portOff, 2, expr.CmpOpEq, []byte{0, 67}), accept),
			rule(ipv4, payloadCmp(expr.PayloadBaseNetworkHeader, gwOff, 4, expr.CmpOpEq, gw), l4proto(unix.IPPROTO_UDP), payloadCmp(th, portOff, 2, expr.CmpOpEq, []byte{0, 53}), accept),
			rule(ipv4, payloadCmp(expr.PayloadBaseNetworkHeader, gwOff, 4, expr.CmpOpEq, gw), l4proto(unix.IPPROTO_TCP), payloadCmp(th, portOff, 2, expr.CmpOpEq, []byte{0, 53}), accept),
		)
	}

	if set.Gateway6 != nil {
		gw6off := uint32(24)
		if ingress {
			gw6off = 8
		}

		out = append(out,
			rule(ipv6, payloadCmp(expr.PayloadBaseNetworkHeader, gw6off, 16, expr.CmpOpEq, set.Gateway6.To16()), l4proto(unix.IPPROTO_UDP), payloadCmp(th, portOff, 2, expr.CmpOpEq, []byte{0, 53}), accept),
			rule(ipv6, payloadCmp(expr.PayloadBaseNetworkHeader, gw6off, 16, expr.CmpOpEq, set.Gateway6.To16()), l4proto(unix.IPPROTO_UDP), payloadRange(th, portOff, []byte{2, 34}, []byte{2, 35}), accept), // DHCPv6 546-547
		)
	}

	if ingress {
		// Replies to what the port sent, recognised without connection tracking.
		out = append(out,
			rule(l4proto(unix.IPPROTO_TCP), payloadMasked(th, 13, []byte{0x10}, expr.CmpOpNeq, []byte{0}), accept),
			rule(ipv4, l4proto(unix.IPPROTO_ICMP), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{0}), accept),
			rule(ipv4, l4proto(unix.IPPROTO_ICMP), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{3}), accept),
			rule(ipv4, l4proto(unix.IPPROTO_ICMP), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{11}), accept),
			rule(ipv6, l4proto(unix.IPPROTO_ICMPV6), payloadRange(th, 0, []byte{1}, []byte{4}), accept),
			rule(ipv6, l4proto(unix.IPPROTO_ICMPV6), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{129}), accept),
		)
	}

	for _, r := range rules {
		v := accept
		if r.Drop {
			v = drop
		}

		out = append(out, rule(aclMatch(r), v))
	}

	if defDrop {
		return append(out, drop)
	}

	return append(out, accept)
}

// aclMatch is the match of one rule.
func aclMatch(r ACLRule) []expr.Any {
	nh, th := expr.PayloadBaseNetworkHeader, expr.PayloadBaseTransportHeader
	parts := [][]expr.Any{}
	srcOff, dstOff, n := uint32(12), uint32(16), uint32(4)
	switch r.Family {
	case unix.NFPROTO_IPV4:
		parts = append(parts, etherType(etherTypeIPv4))
	case unix.NFPROTO_IPV6:
		parts = append(parts, etherType(etherTypeIPv6))
		srcOff, dstOff, n = 8, 24, 16
	}

	addr := func(ip net.IP) []byte {
		if n == 4 {
			return ip.To4()
		}

		return ip.To16()
	}

	if r.Source != nil {
		parts = append(parts, payloadRange(nh, srcOff, addr(r.Source.From), addr(r.Source.To)))
	}

	if r.Dest != nil {
		parts = append(parts, payloadRange(nh, dstOff, addr(r.Dest.From), addr(r.Dest.To)))
	}

	if r.Protocol != 0 {
		parts = append(parts, l4proto(r.Protocol))
	}

	if r.SrcPorts != [2]uint16{} {
		parts = append(parts, payloadRange(th, 0, port16(r.SrcPorts[0]), port16(r.SrcPorts[1])))
	}

	if r.DstPorts != [2]uint16{} {
		parts = append(parts, payloadRange(th, 2, port16(r.DstPorts[0]), port16(r.DstPorts[1])))
	}

	if r.ICMPType >= 0 {
		parts = append(parts, payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{byte(r.ICMPType)}))
	}

	if r.ICMPCode >= 0 {
		parts = append(parts, payloadCmp(th, 1, 1, expr.CmpOpEq, []byte{byte(r.ICMPCode)}))
	}

	return rule(parts...)
}
