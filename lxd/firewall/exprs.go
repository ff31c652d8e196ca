package firewall

import (
	"encoding/binary"
	"net"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The helpers below build nftables expressions as nft(8) would for the matching syntax.

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// metaIs: meta KEY == data.
func metaIs(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// payloadCmp: payload BASE OFFSET LEN OP data.
func payloadCmp(base expr.PayloadBase, offset, length uint32, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: length},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

// alsoCmp: and the value just loaded OP data (after payloadCmp or payloadMasked).
func alsoCmp(op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: op, Register: 1, Data: data}}
}

// payloadMasked: payload BASE OFFSET len(mask) & mask OP data.
func payloadMasked(base expr.PayloadBase, offset uint32, mask []byte, op expr.CmpOp, data []byte) []expr.Any {
	n := uint32(len(mask))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

// payloadRange: payload BASE OFFSET len(from) within [from, to] (big endian).
func payloadRange(base expr.PayloadBase, offset uint32, from, to []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: uint32(len(from))},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: from, ToData: to},
	}
}

// inSubnet: payload (an IPv4 or IPv6 address, as subnet is) & mask OP subnet.
func inSubnet(base expr.PayloadBase, offset uint32, op expr.CmpOp, subnet *net.IPNet) []expr.Any {
	ip := []byte(subnet.IP.To4())
	if ip == nil || len(subnet.Mask) == net.IPv6len {
		ip = subnet.IP.To16()
	}

	n := uint32(len(ip))

	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: []byte(subnet.Mask), Xor: make([]byte, n)},
		&expr.Cmp{Op: op, Register: 1, Data: ip},
	}
}

// l4proto: meta l4proto == p (the transport protocol, past IPv6 extension headers).
func l4proto(p byte) []expr.Any { return metaIs(expr.MetaKeyL4PROTO, []byte{p}) }

func etherType(t uint16) []expr.Any {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, t)
	return payloadCmp(expr.PayloadBaseLLHeader, 12, 2, expr.CmpOpEq, b)
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func rule(parts ...[]expr.Any) []expr.Any {
	out := []expr.Any{}
	for _, p := range parts {
		out = append(out, p...)
	}

	return out
}
