package firewall

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Network ACLs on a bridge's ports, in its bridge table: egress is what a port sends into
// the bridge (prerouting), ingress what the bridge sends out of a port (forward: from
// another port; output: from the host). Each port has its own set of ACLs (the network's
// and its NIC's): PortAdd records the port's key (Port.ACL) in the user data of its jump,
// and ApplyACLs compiles one pair of chains per distinct key. With br_netfilter the rules
// are stateful and reject rejects (acl_state.go); without it they are stateless: replies
// to what a port was allowed to send are recognised by their headers (TCP segments with
// ACK set, ICMP errors and echo replies), reject drops.

// ACLAddr is an inclusive address range of one family.
type ACLAddr struct{ From, To net.IP }

// ACLRule is one compiled rule: every set field must match.
type ACLRule struct {
	Drop     bool     // else accept
	Reject   bool     // with Drop: answer with a TCP reset or ICMP unreachable where possible
	Source   *ACLAddr // nil: any
	Dest     *ACLAddr
	Family   byte // unix.NFPROTO_IPV4 or _IPV6; 0 when neither address nor protocol fixes it
	Protocol byte // IPPROTO_TCP, _UDP, _ICMP, _ICMPV6; 0: any
	SrcPorts [2]uint16
	DstPorts [2]uint16 // [0,0]: any
	ICMPType int       // -1: any
	ICMPCode int       // -1: any
}

// ACLSet is everything applied to a port. Ingress and Egress are in evaluation order
// (drop and reject rules first, then allow: LXD's order); the defaults decide the rest.
type ACLSet struct {
	Gateway, Gateway6           net.IP // the network's addresses: DHCP, DNS and neighbour discovery always pass
	Ingress, Egress             []ACLRule
	IngressDrop, EgressDrop     bool // default actions
	IngressReject, EgressReject bool // with the Drop: reject
}

// Chains: the base chains jump, for each port of the bridge (this kernel generation often
// lacks the bridge-name match, NFT_BRIDGE_META), to the rules of its set in each direction.
// Egress runs at prerouting priority 100, after br_netfilter's IP hooks (priority 0).
const (
	aclEgress     = "acl-egress-late"
	aclEgressOld  = "acl-egress" // an older berthd's, at priority -150: deleted
	aclIngressFwd = "acl-ingress-forward"
	aclIngressOut = "acl-ingress-output"
	aclLocalIn    = "acl-local-input" // clears markEstablished on frames going up to the host
	aclSetPrefix  = "aclset-"         // aclset-out-N, aclset-in-N
)

func aclBase(t *nftables.Table) []*nftables.Chain {
	mk := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio}
	}

	return []*nftables.Chain{
		mk(aclEgress, nftables.ChainHookPrerouting, nftables.ChainPriorityRef(100)),
		mk(aclIngressFwd, nftables.ChainHookForward, nftables.ChainPriorityFilter),
		mk(aclIngressOut, nftables.ChainHookOutput, nftables.ChainPriorityFilter),
		mk(aclLocalIn, nftables.ChainHookInput, nftables.ChainPriorityFilter),
	}
}

func setChain(dir string, i int) string { return fmt.Sprintf("%s%s-%d", aclSetPrefix, dir, i) }

// isACLRuleChain says whether a chain holds compiled rules (this berthd's or an older one's).
func isACLRuleChain(name string) bool {
	return strings.HasPrefix(name, aclSetPrefix) || name == "acl-out" || name == "acl-in"
}

// ApplyACLs replaces the ACL rules of a bridge's ports in one atomic batch. sets gives the
// set of a port key (Port.ACL); nil leaves those ports unfiltered. Ports added later get
// jumps to their key's chains from PortAdd, when those exist (the caller applies again
// for a new key).
func ApplyACLs(bridge string, sets func(key string) (*ACLSet, error)) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := bridgeTable(bridge)
	ports, err := portKeys(c, t)
	if err != nil {
		return err
	}

	keys := []string{""}
	for _, k := range ports {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}

	sort.Strings(keys)
	index := map[string]int{}
	compiled := []*ACLSet{}
	for _, k := range keys {
		s, err := sets(k)
		if err != nil {
			return err
		}

		if s != nil {
			index[k] = len(compiled)
			compiled = append(compiled, s)
		}
	}

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return fmt.Errorf("listing chains: %w", err)
	}

	stateful := Stateful() && len(compiled) > 0
	t = c.AddTable(t)
	base := aclBase(t)
	for _, ch := range base {
		c.AddChain(ch)
		c.FlushChain(ch)
	}

	if stateful {
		c.AddRule(&nftables.Rule{Table: t, Chain: base[3], Exprs: markSet(markEstablished, false)})
	}

	// Jumps go first, then the chains they went to.
	stale := []*nftables.Chain{}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}

		if ch.Name == aclEgressOld {
			c.FlushChain(ch)
			stale = append(stale, ch)
		}

		if isACLRuleChain(ch.Name) {
			c.FlushChain(ch)
			if !keepChain(ch.Name, len(compiled)) {
				stale = append(stale, ch)
			}
		}
	}

	for _, ch := range stale {
		c.DelChain(ch)
	}

	for i, s := range compiled {
		out := c.AddChain(&nftables.Chain{Name: setChain("out", i), Table: t})
		in := c.AddChain(&nftables.Chain{Name: setChain("in", i), Table: t})
		c.FlushChain(out)
		c.FlushChain(in)
		for _, r := range aclChain(s, s.Egress, s.EgressDrop, s.EgressReject, false, stateful) {
			c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: r})
		}

		for _, r := range aclChain(s, s.Ingress, s.IngressDrop, s.IngressReject, true, stateful) {
			c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: r})
		}
	}

	for port, key := range ports {
		if i, ok := index[key]; ok {
			addACLJumps(c, t, base, port, i)
		}
	}

	addACLState(c, bridge, stateful)
	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing ACLs of %s: %w", bridge, err)
	}

	return nil
}

// keepChain says whether rule chain name is one of the n sets about to be written.
func keepChain(name string, n int) bool {
	for i := range n {
		if name == setChain("out", i) || name == setChain("in", i) {
			return true
		}
	}

	return false
}

// addACLJumps sends what port sends to its set's out chain and what it receives to its in
// chain.
func addACLJumps(c *nftables.Conn, t *nftables.Table, base []*nftables.Chain, port string, set int) {
	jump := func(ch *nftables.Chain, key expr.MetaKey, to string) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, UserData: []byte(port), Exprs: rule(
			metaIs(key, ifname(port)), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: to}})})
	}

	jump(base[0], expr.MetaKeyIIFNAME, setChain("out", set))
	jump(base[1], expr.MetaKeyOIFNAME, setChain("in", set))
	jump(base[2], expr.MetaKeyOIFNAME, setChain("in", set))
}

// aclPortJumps returns port's jumps in the ACL base chains.
func aclPortJumps(c *nftables.Conn, t *nftables.Table, port string) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, ch := range aclBase(t)[:3] {
		rules, err := c.GetRules(t, ch)
		if errors.Is(err, unix.ENOENT) {
			continue
		}

		if err != nil {
			return nil, fmt.Errorf("listing ACL jumps of %s: %w", t.Name, err)
		}

		for _, r := range rules {
			if string(r.UserData) == port {
				out = append(out, r)
			}
		}
	}

	return out, nil
}

// portSetChain returns the set chain a port with key already jumps to (-1: none), so a
// port added with a key the bridge has gets its jumps at once; port's own jumps count only
// when its key did not change (self).
func portSetChain(c *nftables.Conn, t *nftables.Table, port, key string, self bool) (int, error) {
	ports, err := portKeys(c, t)
	if err != nil {
		return -1, err
	}

	rules, err := c.GetRules(t, aclBase(t)[0])
	if errors.Is(err, unix.ENOENT) {
		return -1, nil
	}

	if err != nil {
		return -1, fmt.Errorf("listing ACL jumps of %s: %w", t.Name, err)
	}

	for _, r := range rules {
		if string(r.UserData) == port && !self {
			continue
		}

		if k, ok := ports[string(r.UserData)]; ok && k == key {
			for _, e := range r.Exprs {
				v, ok := e.(*expr.Verdict)
				if !ok || v.Kind != expr.VerdictJump {
					continue
				}

				var i int
				_, err := fmt.Sscanf(v.Chain, aclSetPrefix+"out-%d", &i)
				if err == nil {
					return i, nil
				}
			}
		}
	}

	return -1, nil
}

// portACL replaces port's ACL jumps: removed, and added again (add true) to the chains of
// its key when a port with that key has them (the port itself: when self, its key did not
// change).
func portACL(bridge, port, key string, add, self bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := bridgeTable(bridge)
	jumps, err := aclPortJumps(c, t, port)
	if err != nil {
		return err
	}

	set := -1
	if add {
		set, err = portSetChain(c, t, port, key, self)
		if err != nil {
			return err
		}
	}

	if len(jumps) == 0 && set < 0 {
		return nil
	}

	for _, r := range jumps {
		err = c.DelRule(r)
		if err != nil {
			return fmt.Errorf("deleting ACL jump of port %q: %w", port, err)
		}
	}

	if set >= 0 {
		addACLJumps(c, t, aclBase(t), port, set)
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing ACL jumps of port %q: %w", port, err)
	}

	return nil
}

// aclChain is one direction's rules: non-IP frames pass, then established connections
// (stateful) or replies recognised by their headers (ingress, stateless), the baseline,
// the rules, the default.
func aclChain(set *ACLSet, rules []ACLRule, defDrop, defReject, ingress, stateful bool) [][]expr.Any {
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	th := expr.PayloadBaseTransportHeader
	ipv4, ipv6 := etherType(etherTypeIPv4), etherType(etherTypeIPv6)
	out := [][]expr.Any{
		rule(payloadCmp(expr.PayloadBaseLLHeader, 12, 2, expr.CmpOpNeq, []byte{0x08, 0x00}), alsoCmp(expr.CmpOpNeq, []byte{0x86, 0xdd}), accept),
		// Neighbour discovery, router solicitations and advertisements, MLD.
		rule(ipv6, l4proto(unix.IPPROTO_ICMPV6), payloadRange(th, 0, []byte{130}, []byte{143}), accept),
	}

	if stateful {
		// Already marked for rejection by the sender's egress rules; established.
		out = append(out, rule(markHas(markReject), accept), rule(markHas(markEstablished), accept))
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

	if ingress && !stateful {
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
		out = append(out, aclVerdict(aclMatch(r), r.Drop, r.Reject, ingress, stateful)...)
	}

	return append(out, aclVerdict(nil, defDrop, defReject, ingress, stateful)...)
}

// aclVerdict is the rules applying one action to match: a reject marks the frame for the
// inet table's reject and accepts it (stateful), except what the host sends (no input
// interface), which passes no IP hook after this and is dropped.
func aclVerdict(match []expr.Any, drop, reject, ingress, stateful bool) [][]expr.Any {
	if !drop {
		return [][]expr.Any{rule(match, []expr.Any{verdict(expr.VerdictAccept)})}
	}

	if !reject || !stateful {
		return [][]expr.Any{rule(match, []expr.Any{verdict(expr.VerdictDrop)})}
	}

	mark := rule(match, markSet(markReject, true), []expr.Any{verdict(expr.VerdictAccept)})
	if !ingress {
		return [][]expr.Any{mark}
	}

	fromHost := rule(match, metaIs(expr.MetaKeyIIFNAME, ifname("")), []expr.Any{verdict(expr.VerdictDrop)})
	return [][]expr.Any{fromHost, mark}
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
