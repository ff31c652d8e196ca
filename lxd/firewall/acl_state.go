package firewall

import (
	"encoding/binary"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Stateful ACLs. The bridge family has neither connection tracking nor reject on kernels
// built without NF_CONNTRACK_BRIDGE and NFT_BRIDGE_REJECT (this project's CI kernel, which
// has no loadable modules at all: doc/network-acls.md has the errors). br_netfilter (built
// in, or loaded) runs the IP hooks, with conntrack, on bridged IPv4 and IPv6 frames: from
// the bridge's prerouting hook at priority 0 and its forward hook at priority -1. The port
// of a frame is only known in the bridge family, the connection state only in the inet
// family, so the two pass what they know in skb mark bits:
//
//   - markEstablished: the inet table sets it on frames of established or related
//     connections (prerouting for what ports send, output for what the host sends); the
//     bridge chains that run after (egress at prerouting priority 100, ingress at forward
//     and output) accept such frames. A bridge input chain clears it before a frame goes up
//     to the host's routing, so host policy routing never sees it; frames to ports lose it
//     when they cross into the container's network namespace.
//   - markReject: a bridge chain that matched a reject rule sets it and accepts; the inet
//     table's forward and input chains (which run after, with the IP stack's reject) answer
//     with a TCP reset or an ICMP port unreachable and drop the frame. What the host itself
//     sends passes no IP hook after the bridge's output hook, so a reject there drops.
//
// Without br_netfilter (or with bridge-nf-call-ip(6)tables off) ACLs stay stateless:
// replies are recognised by their headers and reject drops.
const (
	markEstablished uint32 = 0x00100000
	markReject      uint32 = 0x00200000
)

// Chains of the inet table.
const (
	aclCtPre     = "acl-ct-prerouting"
	aclCtOut     = "acl-ct-output"
	aclRejectFwd = "acl-reject-forward"
	aclRejectIn  = "acl-reject-input"
)

// brSysctl is where br_netfilter's switches are (a variable for tests).
var brSysctl = "/proc/sys/net/bridge/"

// Stateful says whether bridged IPv4 and IPv6 frames pass the IP hooks (br_netfilter on):
// then ACLs track connections and reject rejects.
func Stateful() bool {
	for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		b, err := os.ReadFile(brSysctl + f)
		if err != nil || strings.TrimSpace(string(b)) != "1" {
			return false
		}
	}

	return true
}

func markBytes(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// markHas: meta mark & bit != 0.
func markHas(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: markBytes(bit), Xor: markBytes(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: markBytes(0)},
	}
}

// markSet: meta mark set mark | bit (set true) or mark & ~bit.
func markSet(bit uint32, set bool) []expr.Any {
	xor := uint32(0)
	if set {
		xor = bit
	}

	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: markBytes(^bit), Xor: markBytes(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// ctEstablished: ct state established,related.
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: markBytes(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: markBytes(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: markBytes(0)},
	}
}

// addACLState writes the inet side of stateful ACLs for bridge: empty chains when off.
func addACLState(c *nftables.Conn, bridge string, on bool) {
	t := c.AddTable(&nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet})
	mk := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		ch := c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio})
		c.FlushChain(ch)
		return ch
	}

	pre := mk(aclCtPre, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle)
	out := mk(aclCtOut, nftables.ChainHookOutput, nftables.ChainPriorityMangle)
	fwd := mk(aclRejectFwd, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	in := mk(aclRejectIn, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	if !on {
		return
	}

	br := ifname(bridge)
	c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: rule(metaIs(expr.MetaKeyIIFNAME, br), ctEstablished(), markSet(markEstablished, true))})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: rule(metaIs(expr.MetaKeyOIFNAME, br), ctEstablished(), markSet(markEstablished, true))})
	for _, ch := range []*nftables.Chain{fwd, in} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rule(metaIs(expr.MetaKeyIIFNAME, br), markHas(markReject), l4proto(unix.IPPROTO_TCP),
			[]expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rule(metaIs(expr.MetaKeyIIFNAME, br), markHas(markReject),
			[]expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}})})
	}
}
