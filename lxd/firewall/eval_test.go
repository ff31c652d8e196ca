package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// evalChain runs a port chain over an Ethernet frame as the kernel's bridge family does
// (nft_do_chain_bridge and the expressions the rules use): IPv4 and IPv6 headers are
// validated to find the transport header and l4proto (past IPv6 extension headers); a
// payload read beyond the frame, or of the transport header of a packet without one or of
// a non-first fragment, ends the rule without a match (NFT_BREAK). It returns "accept" or
// "drop"; a frame that runs off the end of the chain is accepted (the base chain's policy).
func evalChain(rules [][]expr.Any, frame []byte) string {
	pk := parseFrame(frame)
	for _, r := range rules {
		v, ok := evalRule(r, frame, pk)
		if ok {
			return v
		}
	}

	return "accept"
}

type pktinfo struct {
	l4     bool // l4proto and thoff are known
	tprot  byte
	thoff  int // from the network header
	fragOK bool
}

const ethHdr = 14

func parseFrame(f []byte) pktinfo {
	if len(f) < ethHdr {
		return pktinfo{}
	}

	n := f[ethHdr:]
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherTypeIPv4:
		if len(n) < 20 || n[0]>>4 != 4 || int(n[0]&0xf) < 5 {
			return pktinfo{}
		}

		tot, ihl := int(binary.BigEndian.Uint16(n[2:])), int(n[0]&0xf)*4
		if tot > len(n) || tot < ihl {
			return pktinfo{}
		}

		frag := binary.BigEndian.Uint16(n[6:]) & 0x1fff
		return pktinfo{l4: true, tprot: n[9], thoff: ihl, fragOK: frag == 0}
	case etherTypeIPv6:
		if len(n) < 40 || n[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(n[4:])) > len(n) {
			return pktinfo{}
		}

		next, off, fragOK := n[6], 40, true
		for {
			switch next {
			case unix.IPPROTO_HOPOPTS, unix.IPPROTO_ROUTING, unix.IPPROTO_DSTOPTS:
				if off+8 > len(n) {
					return pktinfo{}
				}

				next, off = n[off], off+(int(n[off+1])+1)*8
			case unix.IPPROTO_FRAGMENT:
				if off+8 > len(n) {
					return pktinfo{}
				}

				fragOK = binary.BigEndian.Uint16(n[off+2:])&0xfff8 == 0
				next, off = n[off], off+8
			case unix.IPPROTO_NONE:
				return pktinfo{}
			default:
				return pktinfo{l4: true, tprot: next, thoff: off, fragOK: fragOK}
			}
		}
	}

	return pktinfo{}
}

func evalRule(r []expr.Any, f []byte, pk pktinfo) (string, bool) {
	var reg []byte
	for _, e := range r {
		switch e := e.(type) {
		case *expr.Payload:
			start := int(e.Offset)
			switch e.Base {
			case expr.PayloadBaseLLHeader:
			case expr.PayloadBaseNetworkHeader:
				start += ethHdr
			case expr.PayloadBaseTransportHeader:
				if !pk.l4 || !pk.fragOK {
					return "", false
				}

				start += ethHdr + pk.thoff
			default:
				panic(fmt.Sprintf("payload base %v", e.Base))
			}

			if start+int(e.Len) > len(f) {
				return "", false
			}

			reg = append([]byte(nil), f[start:start+int(e.Len)]...)
		case *expr.Meta:
			if e.Key != expr.MetaKeyL4PROTO {
				panic(fmt.Sprintf("meta key %v", e.Key))
			}

			if !pk.l4 {
				return "", false
			}

			reg = []byte{pk.tprot}
		case *expr.Bitwise:
			for i := range reg {
				reg[i] = reg[i]&e.Mask[i] ^ e.Xor[i]
			}
		case *expr.Cmp:
			c := bytes.Compare(reg[:len(e.Data)], e.Data)
			if (e.Op == expr.CmpOpEq) != (c == 0) {
				return "", false
			}

			if e.Op != expr.CmpOpEq && e.Op != expr.CmpOpNeq {
				panic(fmt.Sprintf("cmp op %v", e.Op))
			}
		case *expr.Range:
			in := bytes.Compare(reg, e.FromData) >= 0 && bytes.Compare(reg, e.ToData) <= 0
			if (e.Op == expr.CmpOpEq) != in {
				return "", false
			}
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				return "accept", true
			case expr.VerdictDrop:
				return "drop", true
			}

			panic(fmt.Sprintf("verdict %v", e.Kind))
		default:
			panic(fmt.Sprintf("expression %T", e))
		}
	}

	return "", false
}
