package firewall

import (
	"net"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// What a container may send into the bridge through its port. The rules read the frame at
// fixed offsets (nft "payload" expressions); the layouts they rely on:
//
//	Ethernet (ll):  0 destination(6) 6 source(6) 12 ethertype(2). A VLAN tag the kernel has
//	                taken off is put back for these reads, so tagged frames show 0x8100/0x88a8.
//	ARP (nh):       0 htype(2)=1 2 ptype(2)=0x0800 4 hlen=6 5 plen=4 6 op(2)
//	                8 sender MAC(6) 14 sender IPv4(4) 18 target MAC(6) 24 target IPv4(4)
//	IPv4 (nh):      6 flags+fragment offset(2) 9 protocol 12 source(4); th is past the options
//	UDP (th):       0 source port 2 destination port 4 length 6 checksum 8 payload
//	BOOTP (th+8):   0 op=1 (request) 1 htype=1 2 hlen=6 3 hops 4 xid(4) 8 secs 10 flags
//	                12 ciaddr 16 yiaddr 20 siaddr 24 giaddr 28 chaddr(16): chaddr at th 36
//	IPv6 (nh):      4 payload length(2) 6 next header 7 hop limit 8 source(16) 24 destination(16)
//	ICMPv6 (th, past any extension headers, as meta l4proto found them):
//	                0 type 1 code 2 checksum(2)
//	  RS (133):     4 reserved(4), options at 8
//	  NS/NA (135/6): 4 flags(4) 8 target(16), options at 24
//	  ND option:    type, length in units of 8 bytes, data; for Ethernet a link-layer
//	                address option is {type, 1, MAC(6)}: 8 bytes.
//
// A payload read past the end of the packet (or of a fragment) does not match, in either
// direction: checks that must hold are therefore written as "accept when right, then drop
// the kind", or on packets whose length was checked first.

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	icmpv6MLDReport       = 131
	icmpv6MLDDone         = 132
	icmpv6RouterSolicit   = 133
	icmpv6RouterAdvert    = 134
	icmpv6NeighborSolicit = 135
	icmpv6NeighborAdvert  = 136
	icmpv6Redirect        = 137
	icmpv6MLDv2Report     = 143

	ndOptSourceLLAddr = 1
	ndOptTargetLLAddr = 2
	ndOptNonce        = 14 // RFC 7527: Linux puts one in its duplicate address detection NS
)

// linkLocal is the link-local address the kernel gives an Ethernet interface with mac
// (fe80::/64 and the modified EUI-64 interface identifier, RFC 4291 appendix A); the
// containers' systemd-networkd keeps that default.
func linkLocal(mac net.HardwareAddr) net.IP {
	ip := make(net.IP, net.IPv6len)
	ip[0], ip[1] = 0xfe, 0x80
	ip[8], ip[9], ip[10], ip[11] = mac[0]^0x02, mac[1], mac[2], 0xff
	ip[12], ip[13], ip[14], ip[15] = 0xfe, mac[3], mac[4], mac[5]
	return ip
}

// portRules is the chain of a port: the first verdict wins, and a frame that reaches the
// end is accepted. p was checked by PortAdd.
func portRules(p Port) [][]expr.Any {
	mac, ip4 := []byte(p.MAC), []byte(p.IP.To4())
	ll := []byte(linkLocal(p.MAC))
	zero4, zero6 := make([]byte, 4), make([]byte, 16)
	drop := []expr.Any{verdict(expr.VerdictDrop)}
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	llh, nh, th := expr.PayloadBaseLLHeader, expr.PayloadBaseNetworkHeader, expr.PayloadBaseTransportHeader
	arp, ipv4, ipv6 := etherType(etherTypeARP), etherType(etherTypeIPv4), etherType(etherTypeIPv6)

	// notOwn6: payload at base+off (16 bytes) is neither of the port's IPv6 addresses.
	notOwn6 := func(base expr.PayloadBase, off uint32) []expr.Any {
		e := payloadCmp(base, off, 16, expr.CmpOpNeq, ll)
		if p.IP6 != nil {
			e = append(e, alsoCmp(expr.CmpOpNeq, p.IP6.To16())...)
		}

		return e
	}

	icmp6 := func(typ byte) []expr.Any {
		return rule(ipv6, l4proto(unix.IPPROTO_ICMPV6), payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{typ}))
	}

	// ndSize: the ICMPv6 message, with no extension header before it (checked first), is
	// n bytes long.
	ndSize := func(op expr.CmpOp, n uint16) []expr.Any {
		return payloadCmp(nh, 4, 2, op, []byte{byte(n >> 8), byte(n)})
	}

	lladdrOpt := func(typ byte) []byte { return append([]byte{typ, 1}, mac...) }
	bootRequest := rule(ipv4, l4proto(unix.IPPROTO_UDP), payloadCmp(th, 2, 2, expr.CmpOpEq, []byte{0, 67}))

	rules := [][]expr.Any{
		// Any frame: its source MAC, and only ARP, IPv4 and IPv6 (no VLAN tags, 802.1ad,
		// PPPoE, LLDP, STP or other protocols the checks below do not read).
		rule(payloadCmp(llh, 6, 6, expr.CmpOpNeq, mac), drop),
		rule(payloadCmp(llh, 12, 2, expr.CmpOpNeq, []byte{0x08, 0x00}),
			alsoCmp(expr.CmpOpNeq, []byte{0x08, 0x06}), alsoCmp(expr.CmpOpNeq, []byte{0x86, 0xdd}), drop),

		// ARP for Ethernet and IPv4, sent as its MAC, from its address or 0.0.0.0 (a probe,
		// RFC 5227); anything else ARP is dropped.
		rule(arp, payloadCmp(nh, 0, 6, expr.CmpOpEq, []byte{0, 1, 8, 0, 6, 4}),
			payloadCmp(nh, 8, 6, expr.CmpOpEq, mac), payloadCmp(nh, 14, 4, expr.CmpOpEq, ip4), accept),
		rule(arp, payloadCmp(nh, 0, 6, expr.CmpOpEq, []byte{0, 1, 8, 0, 6, 4}),
			payloadCmp(nh, 8, 6, expr.CmpOpEq, mac), payloadCmp(nh, 14, 4, expr.CmpOpEq, zero4), accept),
		rule(arp, drop),

		// DHCP client messages (to port 67), from 0.0.0.0 or its address, only as a BOOTP
		// request for its own MAC: dnsmasq finds leases and reservations by chaddr (it is
		// told to ignore client identifiers), so another chaddr would decline or release a
		// neighbour's lease. Never fragmented, so that the chaddr read is the one dnsmasq
		// gets. Everything else to port 67 is dropped.
		rule(bootRequest, payloadMasked(nh, 6, []byte{0x3f, 0xff}, expr.CmpOpEq, []byte{0, 0}),
			payloadCmp(th, 8, 3, expr.CmpOpEq, []byte{1, 1, 6}), payloadCmp(th, 36, 6, expr.CmpOpEq, mac),
			payloadCmp(nh, 12, 4, expr.CmpOpEq, zero4), accept),
		rule(bootRequest, payloadMasked(nh, 6, []byte{0x3f, 0xff}, expr.CmpOpEq, []byte{0, 0}),
			payloadCmp(th, 8, 3, expr.CmpOpEq, []byte{1, 1, 6}), payloadCmp(th, 36, 6, expr.CmpOpEq, mac),
			payloadCmp(nh, 12, 4, expr.CmpOpEq, ip4), accept),
		rule(bootRequest, drop),
		// IPv4: its reserved address only, and no DHCP server (replies from port 67).
		rule(ipv4, payloadCmp(nh, 12, 4, expr.CmpOpNeq, ip4), drop),
		rule(ipv4, l4proto(unix.IPPROTO_UDP), payloadCmp(th, 0, 2, expr.CmpOpEq, []byte{0, 67}), drop),
		rule(ipv4, accept),

		// IPv6: no router, redirect or DHCPv6 server (l4proto looks past extension headers).
		rule(icmp6(icmpv6RouterAdvert), drop),
		rule(icmp6(icmpv6Redirect), drop),
		rule(ipv6, l4proto(unix.IPPROTO_UDP), payloadCmp(th, 0, 2, expr.CmpOpEq, []byte{2, 35}), drop), // 547

		// Neighbour discovery (RS 133, NS 135, NA 136): never behind an extension header
		// (so that the IPv6 payload length is the message's), and either no option or one
		// option, which for a link-layer address must be its MAC. Receivers take the first
		// of duplicate options, others the last: one option leaves no choice. A fragment
		// header is an extension header too; fragments whose ICMPv6 type cannot be read
		// here (a first fragment cut before it, later fragments) are not neighbour
		// discovery to a receiver: Linux drops first fragments without the whole header
		// chain (RFC 8200 4.5) and reassembled neighbour discovery (RFC 6980).
		rule(ipv6, l4proto(unix.IPPROTO_ICMPV6),
			payloadRange(th, 0, []byte{icmpv6RouterSolicit}, []byte{icmpv6NeighborAdvert}),
			payloadCmp(nh, 6, 1, expr.CmpOpNeq, []byte{unix.IPPROTO_ICMPV6}), drop),
		// RS: 8 bytes, or 16 with its source link-layer address.
		rule(icmp6(icmpv6RouterSolicit), ndSize(expr.CmpOpNeq, 8),
			alsoCmp(expr.CmpOpNeq, []byte{0, 16}), drop),
		rule(icmp6(icmpv6RouterSolicit), ndSize(expr.CmpOpEq, 16),
			payloadCmp(th, 8, 8, expr.CmpOpNeq, lladdrOpt(ndOptSourceLLAddr)), drop),
		// NS: 24 bytes, or 32 with its source link-layer address or a nonce (duplicate
		// address detection, from ::, which may only probe its own addresses).
		rule(icmp6(icmpv6NeighborSolicit), ndSize(expr.CmpOpNeq, 24),
			alsoCmp(expr.CmpOpNeq, []byte{0, 32}), drop),
		rule(icmp6(icmpv6NeighborSolicit), ndSize(expr.CmpOpEq, 32),
			payloadCmp(th, 24, 8, expr.CmpOpNeq, lladdrOpt(ndOptSourceLLAddr)),
			payloadCmp(th, 24, 2, expr.CmpOpNeq, []byte{ndOptNonce, 1}), drop),
		rule(icmp6(icmpv6NeighborSolicit), payloadCmp(nh, 8, 16, expr.CmpOpEq, zero6), notOwn6(th, 8), drop),
		// NA: claims only its own addresses (solicited or not), 24 bytes, or 32 with its
		// target link-layer address.
		rule(icmp6(icmpv6NeighborAdvert), notOwn6(th, 8), drop),
		rule(icmp6(icmpv6NeighborAdvert), ndSize(expr.CmpOpNeq, 24),
			alsoCmp(expr.CmpOpNeq, []byte{0, 32}), drop),
		rule(icmp6(icmpv6NeighborAdvert), ndSize(expr.CmpOpEq, 32),
			payloadCmp(th, 24, 8, expr.CmpOpNeq, lladdrOpt(ndOptTargetLLAddr)), drop),
	}

	// Sources: its SLAAC address, its own link-local address, or :: for what a host
	// without an address sends (RFC 4861, 3810, 4862): RS, NS for duplicate address
	// detection, MLD reports and done. Any other address, link-local ones included, is
	// dropped.
	if p.IP6 != nil {
		rules = append(rules, rule(ipv6, payloadCmp(nh, 8, 16, expr.CmpOpEq, p.IP6.To16()), accept))
	}

	return append(rules,
		rule(ipv6, payloadCmp(nh, 8, 16, expr.CmpOpEq, ll), accept),
		rule(ipv6, payloadCmp(nh, 8, 16, expr.CmpOpEq, zero6), l4proto(unix.IPPROTO_ICMPV6),
			payloadRange(th, 0, []byte{icmpv6MLDReport}, []byte{icmpv6RouterSolicit}), accept),
		rule(ipv6, payloadCmp(nh, 8, 16, expr.CmpOpEq, zero6), l4proto(unix.IPPROTO_ICMPV6),
			payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{icmpv6NeighborSolicit}), accept),
		rule(ipv6, payloadCmp(nh, 8, 16, expr.CmpOpEq, zero6), l4proto(unix.IPPROTO_ICMPV6),
			payloadCmp(th, 0, 1, expr.CmpOpEq, []byte{icmpv6MLDv2Report}), accept),
		rule(ipv6, drop),
	)
}
