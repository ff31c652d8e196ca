package firewall

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ForwardRule is one destination translation of a network forward: what reaches Listen
// (on ListenPort of Protocol) goes to Target (TargetPort). A rule without Protocol is a
// forward's default target: every other packet to Listen, ports unchanged.
type ForwardRule struct {
	Listen     net.IP
	Protocol   string // "tcp", "udp", or "" for the default target
	ListenPort uint16
	Target     net.IP
	TargetPort uint16
}

// Chains of a bridge's inet table holding its forwards: prerouting for what arrives from
// outside or from the bridge, output for what the host itself sends.
const (
	forwardPrerouting = "forward-prerouting"
	forwardOutput     = "forward-output"
)

// ApplyForwards replaces the forwards of a bridge network in its inet table, in one
// atomic batch, leaving its other chains as they are. Port rules come before default
// targets, so that a listen address with both sends a forwarded port to its own target.
func ApplyForwards(bridge string, rules []ForwardRule) error {
	for _, r := range rules {
		if (r.Listen.To4() == nil) != (r.Target.To4() == nil) || r.Listen.To16() == nil || r.Target.To16() == nil {
			return fmt.Errorf("forward %s to %s: addresses of one family needed", r.Listen, r.Target)
		}

		if r.Protocol != "" && r.Protocol != "tcp" && r.Protocol != "udp" {
			return fmt.Errorf("forward protocol %q: tcp or udp", r.Protocol)
		}
	}

	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := c.AddTable(&nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet})
	pre := c.AddChain(&nftables.Chain{
		Name: forwardPrerouting, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
	})
	out := c.AddChain(&nftables.Chain{
		Name: forwardOutput, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
	})
	c.FlushChain(pre)
	c.FlushChain(out)
	for _, withPort := range []bool{true, false} {
		for _, r := range rules {
			if (r.Protocol != "") != withPort {
				continue
			}

			for _, ch := range []*nftables.Chain{pre, out} {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: forwardExprs(r)})
			}
		}
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing forwards of %s: %w", bridge, err)
	}

	return nil
}

// forwardExprs: [meta nfproto F] ip(6) daddr LISTEN [meta l4proto P th dport LP] dnat to
// TARGET[:TP].
func forwardExprs(r ForwardRule) []expr.Any {
	family, daddrOff, listen, target := byte(unix.NFPROTO_IPV4), uint32(16), []byte(r.Listen.To4()), []byte(r.Target.To4())
	if listen == nil {
		family, daddrOff, listen, target = unix.NFPROTO_IPV6, 24, r.Listen.To16(), r.Target.To16()
	}

	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(family), RegAddrMin: 1}
	parts := [][]expr.Any{
		metaIs(expr.MetaKeyNFPROTO, []byte{family}),
		payloadCmp(expr.PayloadBaseNetworkHeader, daddrOff, uint32(len(listen)), expr.CmpOpEq, listen),
	}

	load := []expr.Any{&expr.Immediate{Register: 1, Data: target}}
	if r.Protocol != "" {
		proto := byte(unix.IPPROTO_TCP)
		if r.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}

		parts = append(parts, l4proto(proto),
			payloadCmp(expr.PayloadBaseTransportHeader, 2, 2, expr.CmpOpEq, port16(r.ListenPort)))
		load = append(load, &expr.Immediate{Register: 2, Data: port16(r.TargetPort)})
		nat.RegProtoMin = 2
	}

	parts = append(parts, load, []expr.Any{nat})
	return rule(parts...)
}

func port16(p uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, p)
	return b
}
