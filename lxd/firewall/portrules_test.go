package firewall

import (
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// Frames as a container sends them, built byte by byte (checksums are not read by the
// rules and left zero).

var (
	ownMAC, _   = net.ParseMAC("00:16:3e:01:02:03")
	otherMAC, _ = net.ParseMAC("00:16:3e:0a:0b:0c")
	ownIP       = net.ParseIP("10.251.3.7").To4()
	otherIP     = net.ParseIP("10.251.3.8").To4()
	ownIP6      = net.ParseIP("fd42:1:2:3:216:3eff:fe01:203")
	ownLL       = net.ParseIP("fe80::216:3eff:fe01:203")
	otherLL     = net.ParseIP("fe80::216:3eff:fe0a:b0c")
	gatewayLL   = net.ParseIP("fe80::1")
	otherIP6    = net.ParseIP("fd42:1:2:3:216:3eff:fe0a:b0c")
	allNodes    = net.ParseIP("ff02::1")
	allRouters  = net.ParseIP("ff02::2")
	mldv2       = net.ParseIP("ff02::16")
	unspec6     = net.IPv6unspecified
)

func eth(src net.HardwareAddr, typ uint16, payload []byte) []byte {
	f := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...)
	f = binary.BigEndian.AppendUint16(f, typ)
	f = append(f, payload...)
	for len(f) < 60 { // Ethernet minimum: the padding is there to be read
		f = append(f, 0)
	}

	return f
}

func arpFrame(hdr []byte, sha net.HardwareAddr, spa net.IP) []byte {
	p := append(append([]byte{}, hdr...), 0, 1)
	p = append(append(p, sha...), spa.To4()...)
	p = append(p, make([]byte, 6)...)
	p = append(p, otherIP...)
	return eth(ownMAC, etherTypeARP, p)
}

var arpEthIPv4 = []byte{0, 1, 8, 0, 6, 4}

// ipv4 wraps a transport payload; frag is the flags+offset field.
func ipv4(src, dst net.IP, proto byte, frag uint16, payload []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[6:], frag)
	h = append(append(h, src.To4()...), dst.To4()...)
	return eth(ownMAC, etherTypeIPv4, append(h, payload...))
}

func udp(sport, dport uint16, payload []byte) []byte {
	h := binary.BigEndian.AppendUint16(nil, sport)
	h = binary.BigEndian.AppendUint16(h, dport)
	h = binary.BigEndian.AppendUint16(h, uint16(8+len(payload)))
	return append(append(h, 0, 0), payload...)
}

// bootRequest is a DHCP client message (op 1, Ethernet) for chaddr, with option 53 typ.
func bootRequest(chaddr net.HardwareAddr, typ byte) []byte {
	b := make([]byte, 236)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[28:], chaddr)
	b = append(b, 99, 130, 83, 99, 53, 1, typ, 255)
	return b
}

// ipv6 wraps a payload after the given next header.
func ipv6(src, dst net.IP, next byte, payload []byte) []byte {
	h := []byte{0x60, 0, 0, 0, 0, 0, next, 255}
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h = append(append(h, src.To16()...), dst.To16()...)
	return eth(ownMAC, etherTypeIPv6, append(h, payload...))
}

func icmp6(src, dst net.IP, msg []byte) []byte { return ipv6(src, dst, unix.IPPROTO_ICMPV6, msg) }

func lla(typ byte, mac net.HardwareAddr) []byte { return append([]byte{typ, 1}, mac...) }

func rs(opts ...[]byte) []byte { return cat(append([][]byte{{133, 0, 0, 0, 0, 0, 0, 0}}, opts...)...) }

func ns(target net.IP, opts ...[]byte) []byte {
	return cat(append([][]byte{{135, 0, 0, 0, 0, 0, 0, 0}, target.To16()}, opts...)...)
}

func na(target net.IP, opts ...[]byte) []byte {
	return cat(append([][]byte{{136, 0, 0, 0, 0x20, 0, 0, 0}, target.To16()}, opts...)...)
}

// hopByHop puts a hop-by-hop header with a router alert (as MLD has) before msg.
func hopByHop(msg []byte) []byte {
	return append([]byte{unix.IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0}, msg...)
}

func mldv2Report() []byte { return []byte{143, 0, 0, 0, 0, 0, 0, 0} }

func cat(parts ...[]byte) []byte {
	out := []byte{}
	for _, p := range parts {
		out = append(out, p...)
	}

	return out
}

type frameCase struct {
	name  string
	frame []byte
	want  string
}

// What a Debian 12 container (systemd-networkd, kernel neighbour discovery) sends, and
// what it must not.
func portCases() []frameCase {
	nonce := []byte{14, 1, 1, 2, 3, 4, 5, 6}
	tagged := append([]byte{0, 5, 0x08, 0x00}, ipv4(ownIP, otherIP, unix.IPPROTO_UDP, 0, udp(1, 2, nil))[14:]...)
	decline := bootRequest(otherMAC, 4)

	return []frameCase{
		// IPv4 and ARP.
		{"tcp from own address", ipv4(ownIP, otherIP, unix.IPPROTO_TCP, 0x4000, make([]byte, 20)), "accept"},
		{"from another address", ipv4(otherIP, ownIP, unix.IPPROTO_TCP, 0, make([]byte, 20)), "drop"},
		{"from another MAC", eth(otherMAC, etherTypeIPv4, ipv4(ownIP, otherIP, unix.IPPROTO_TCP, 0, make([]byte, 20))[14:]), "drop"},
		{"dhcp discover from 0.0.0.0", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(68, 67, bootRequest(ownMAC, 1))), "accept"},
		{"dhcp request from own address", ipv4(ownIP, otherIP, unix.IPPROTO_UDP, 0x4000, udp(68, 67, bootRequest(ownMAC, 3))), "accept"},
		{"dhcp decline for another chaddr from 0.0.0.0", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(68, 67, decline)), "drop"},
		{"dhcp release for another chaddr from own address", ipv4(ownIP, otherIP, unix.IPPROTO_UDP, 0, udp(68, 67, bootRequest(otherMAC, 7))), "drop"},
		{"dhcp with hlen 16", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(68, 67, func() []byte {
			b := bootRequest(ownMAC, 4)
			b[2] = 16
			return b
		}())), "drop"},
		{"dhcp first fragment", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0x2000, udp(68, 67, bootRequest(ownMAC, 4)[:16])), "drop"},
		{"dhcp too short for chaddr", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(68, 67, []byte{1, 1, 6})), "drop"},
		{"udp from 0.0.0.0 not to dhcp", ipv4(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(68, 53, nil)), "drop"},
		{"dhcp server reply", ipv4(ownIP, net.IPv4bcast, unix.IPPROTO_UDP, 0, udp(67, 68, make([]byte, 240))), "drop"},
		{"arp from own address", arpFrame(arpEthIPv4, ownMAC, ownIP), "accept"},
		{"arp probe", arpFrame(arpEthIPv4, ownMAC, net.IPv4zero), "accept"},
		{"arp for another address", arpFrame(arpEthIPv4, ownMAC, otherIP), "drop"},
		{"arp with another sender MAC", arpFrame(arpEthIPv4, otherMAC, ownIP), "drop"},
		{"arp with 8-byte hardware addresses", arpFrame([]byte{0, 1, 8, 0, 8, 4}, ownMAC, ownIP), "drop"},

		// Ethertypes.
		{"802.1Q", eth(ownMAC, 0x8100, tagged), "drop"},
		{"802.1ad", eth(ownMAC, 0x88a8, tagged), "drop"},
		{"PPPoE discovery", eth(ownMAC, 0x8863, make([]byte, 46)), "drop"},
		{"PPPoE session", eth(ownMAC, 0x8864, make([]byte, 46)), "drop"},
		{"local experimental 0x88b5", eth(ownMAC, 0x88b5, make([]byte, 46)), "drop"},
		{"IPX", eth(ownMAC, 0x8137, make([]byte, 46)), "drop"},
		{"LLDP", eth(ownMAC, 0x88cc, make([]byte, 46)), "drop"},
		{"802.3 length (STP)", eth(ownMAC, 0x0026, make([]byte, 46)), "drop"},

		// IPv6 sources.
		{"ping6 from own SLAAC address", icmp6(ownIP6, otherIP6, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "accept"},
		{"ping6 from own link-local", icmp6(ownLL, otherLL, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "accept"},
		{"ping6 from another link-local", icmp6(otherLL, gatewayLL, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "drop"},
		{"ping6 from another address in the prefix", icmp6(otherIP6, ownIP6, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "drop"},
		{"ping6 from ::", icmp6(unspec6, otherLL, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "drop"},
		{"udp from ::", ipv6(unspec6, allNodes, unix.IPPROTO_UDP, udp(1, 2, nil)), "drop"},
		{"dhcpv6 solicit from own link-local", ipv6(ownLL, net.ParseIP("ff02::1:2"), unix.IPPROTO_UDP, udp(546, 547, make([]byte, 4))), "accept"},
		{"dhcpv6 solicit from another link-local", ipv6(otherLL, net.ParseIP("ff02::1:2"), unix.IPPROTO_UDP, udp(546, 547, make([]byte, 4))), "drop"},
		{"dhcpv6 server reply", ipv6(ownLL, otherLL, unix.IPPROTO_UDP, udp(547, 546, make([]byte, 4))), "drop"},
		{"router advertisement", icmp6(ownLL, allNodes, make16(134)), "drop"},
		{"redirect", icmp6(ownLL, otherLL, make16(137)), "drop"},

		// Router solicitations.
		{"rs from own link-local with its MAC", icmp6(ownLL, allRouters, rs(lla(1, ownMAC))), "accept"},
		{"rs from ::", icmp6(unspec6, allRouters, rs()), "accept"},
		{"rs with another MAC", icmp6(ownLL, allRouters, rs(lla(1, otherMAC))), "drop"},
		{"rs with two options", icmp6(ownLL, allRouters, rs(lla(1, ownMAC), lla(1, otherMAC))), "drop"},

		// Neighbour solicitations.
		{"ns from own link-local with its MAC", icmp6(ownLL, otherLL, ns(otherLL, lla(1, ownMAC))), "accept"},
		{"ns from own address with its MAC", icmp6(ownIP6, otherIP6, ns(otherIP6, lla(1, ownMAC))), "accept"},
		{"ns with another MAC", icmp6(ownLL, otherLL, ns(otherLL, lla(1, otherMAC))), "drop"},
		{"ns with nonce then another MAC", icmp6(ownLL, otherLL, ns(otherLL, nonce, lla(1, otherMAC))), "drop"},
		{"ns with a target link-layer option", icmp6(ownLL, otherLL, ns(otherLL, lla(2, ownMAC))), "drop"},
		{"dad ns for own link-local with nonce", icmp6(unspec6, net.ParseIP("ff02::1:ff01:203"), ns(ownLL, nonce)), "accept"},
		{"dad ns for own address", icmp6(unspec6, net.ParseIP("ff02::1:ff01:203"), ns(ownIP6)), "accept"},
		{"dad ns for another's address", icmp6(unspec6, net.ParseIP("ff02::1:ff0a:b0c"), ns(otherIP6, nonce)), "drop"},
		{"dad ns for the gateway's link-local", icmp6(unspec6, net.ParseIP("ff02::1:ff00:1"), ns(gatewayLL)), "drop"},
		{"ns from another link-local", icmp6(otherLL, gatewayLL, ns(gatewayLL, lla(1, ownMAC))), "drop"},

		// Neighbour advertisements.
		{"na for own link-local with its MAC", icmp6(ownLL, allNodes, na(ownLL, lla(2, ownMAC))), "accept"},
		{"na for own address with its MAC", icmp6(ownIP6, allNodes, na(ownIP6, lla(2, ownMAC))), "accept"},
		{"na for own address without option (reply to unicast ns)", icmp6(ownLL, otherLL, na(ownLL)), "accept"},
		{"na for the gateway's link-local", icmp6(ownLL, allNodes, na(gatewayLL, lla(2, ownMAC))), "drop"},
		{"na for another's link-local", icmp6(ownLL, allNodes, na(otherLL, lla(2, ownMAC))), "drop"},
		{"na for another's address", icmp6(ownIP6, allNodes, na(otherIP6, lla(2, ownMAC))), "drop"},
		{"na for own address with another MAC", icmp6(ownLL, allNodes, na(ownLL, lla(2, otherMAC))), "drop"},
		{"na with a source link-layer option", icmp6(ownLL, allNodes, na(ownLL, lla(1, ownMAC))), "drop"},
		{"na with another option first", icmp6(ownLL, allNodes, na(ownLL, []byte{99, 1, 0, 0, 0, 0, 0, 0}, lla(2, otherMAC))), "drop"},
		{"na with own option then another", icmp6(ownLL, allNodes, na(ownLL, lla(2, ownMAC), lla(2, otherMAC))), "drop"},
		{"na behind a hop-by-hop header", ipv6(ownLL, allNodes, unix.IPPROTO_HOPOPTS, hopByHop(na(ownLL, lla(2, otherMAC)))), "drop"},
		{"na truncated option", icmp6(ownLL, allNodes, na(ownLL, []byte{2, 1, 0, 0})), "drop"},
		{"na from ::", icmp6(unspec6, allNodes, na(ownLL, lla(2, ownMAC))), "drop"},

		// MLD.
		{"mldv2 report from :: (router alert)", ipv6(unspec6, mldv2, unix.IPPROTO_HOPOPTS, hopByHop(mldv2Report())), "accept"},
		{"mldv2 report from own link-local", ipv6(ownLL, mldv2, unix.IPPROTO_HOPOPTS, hopByHop(mldv2Report())), "accept"},
		{"mldv2 report from another link-local", ipv6(otherLL, mldv2, unix.IPPROTO_HOPOPTS, hopByHop(mldv2Report())), "drop"},
	}
}

func make16(typ byte) []byte {
	b := make([]byte, 16)
	b[0] = typ
	return b
}

func TestPortRules(t *testing.T) {
	rules := portRules(Port{MAC: ownMAC, IP: ownIP, IP6: ownIP6})
	for _, c := range portCases() {
		if got := evalChain(rules, c.frame); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// Without an IPv6 prefix the port still has its link-local address, and only that.
func TestPortRulesNoPrefix(t *testing.T) {
	rules := portRules(Port{MAC: ownMAC, IP: ownIP})
	for _, c := range []frameCase{
		{"ping6 from own link-local", icmp6(ownLL, otherLL, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "accept"},
		{"na for own link-local", icmp6(ownLL, allNodes, na(ownLL, lla(2, ownMAC))), "accept"},
		{"ping6 from what would be its SLAAC address", icmp6(ownIP6, otherIP6, []byte{128, 0, 0, 0, 0, 1, 0, 1}), "drop"},
		{"na for what would be its SLAAC address", icmp6(ownLL, allNodes, na(ownIP6, lla(2, ownMAC))), "drop"},
		{"dad ns for own link-local", icmp6(unspec6, allNodes, ns(ownLL)), "accept"},
	} {
		if got := evalChain(rules, c.frame); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestLinkLocal(t *testing.T) {
	mac, _ := net.ParseMAC("00:16:3e:06:68:29")
	if got := linkLocal(mac).String(); got != "fe80::216:3eff:fe06:6829" {
		t.Fatalf("linkLocal = %s", got)
	}
}
