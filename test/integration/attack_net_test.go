package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netPeer is what the attack tests know of a container on the default bridge.
type netPeer struct {
	name string
	pid  int
	mac  net.HardwareAddr
	ip   net.IP
	ip6  net.IP
	ll   net.IP
}

// TestAttackNetPortFilter: root in container a1 forges, from its own network namespace,
// the frames a tenant could use against its neighbour v1 and the host: neighbour
// advertisements for others' addresses or with another MAC, solicitations with another
// MAC, IPv6 from link-local addresses not its own or from ::, foreign ethertypes, and DHCP
// messages for v1's MAC or client identifier. Each must change nothing (the neighbour
// tables, what v1 and the host receive, v1's dnsmasq lease); the same frames with a1's own
// addresses and MAC get through.
func TestAttackNetPortFilter(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	nw := d.defaultNetwork()
	gw, _, err := net.ParseCIDR(nw.Config["ipv4.address"])
	if err != nil {
		t.Fatal(err)
	}

	d.berth("launch", "debian/12", "a1")
	d.berth("launch", "debian/12", "v1")
	peers := map[string]*netPeer{}
	for _, name := range []string{"a1", "v1"} {
		if st := d.waitRunning(name); st != "running" {
			t.Fatalf("%s: systemd says %q", name, st)
		}

		p := &netPeer{name: name, pid: d.initPID(name), ip: net.ParseIP(d.waitIPv4(name, 5*time.Second)), ip6: net.ParseIP(d.waitIPv6(name))}
		inst, _, err := d.c.GetInstance(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}

		p.mac, err = net.ParseMAC(inst.Config["volatile.eth0.hwaddr"])
		if err != nil {
			t.Fatal(err)
		}

		// The filter allows the EUI-64 link-local address: what systemd-networkd sets.
		p.ll = linkLocalOf(p.mac)
		if out := d.mustInside(name, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"); !strings.Contains(out, p.ll.String()+"/64") {
			t.Fatalf("%s's link-local address is not %s:\n%s", name, p.ll, out)
		}

		peers[name] = p
	}

	br, err := netlink.LinkByName(nw.Name)
	if err != nil {
		t.Fatal(err)
	}

	addrs, _ := netlink.AddrList(br, netlink.FAMILY_V6)
	i := slices.IndexFunc(addrs, func(a netlink.Addr) bool { return a.IP.IsLinkLocalUnicast() })
	if i < 0 {
		t.Fatalf("bridge %s has no link-local address: %v", nw.Name, addrs)
	}

	host := &netPeer{name: nw.Name, mac: br.Attrs().HardwareAddr, ip: gw, ll: addrs[i].IP}
	a, v := peers["a1"], peers["v1"]

	t.Run("NeighborDiscovery", func(t *testing.T) { testForgedND(t, d, br, host, a, v) })
	t.Run("LinkLocalSources", func(t *testing.T) { testForgedSources(t, host, a) })
	t.Run("Ethertypes", func(t *testing.T) { testForgedEthertypes(t, a, v) })
	t.Run("DHCP", func(t *testing.T) {
		testForgedDHCP(t, filepath.Join(d.dir, "networks", nw.Name, "dnsmasq.leases"), host, a, v)
	})
}

// hostNeigh is the host's neighbour entry of ip on the bridge ("" without one).
func hostNeigh(t *testing.T, br netlink.Link, ip net.IP) string {
	t.Helper()
	neigh, err := netlink.NeighList(br.Attrs().Index, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}

	for _, n := range neigh {
		if n.IP.Equal(ip) {
			return n.HardwareAddr.String()
		}
	}

	return ""
}

func setHostNeigh(t *testing.T, br netlink.Link, ip net.IP, mac net.HardwareAddr) {
	t.Helper()
	err := netlink.NeighSet(&netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V6,
		State: netlink.NUD_STALE, IP: ip, HardwareAddr: mac})
	if err != nil {
		t.Fatal(err)
	}
}

// containerNeigh is a container's neighbour entry of ip on eth0 ("" without one).
func containerNeigh(d *daemon, name string, ip net.IP) string {
	f := strings.Fields(d.mustInside(name, "ip", "-6", "neigh", "show", "to", ip.String(), "dev", "eth0"))
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}

	return ""
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}

		time.Sleep(50 * time.Millisecond)
	}

	return true
}

// settle is how long a forged frame is given to take effect: a frame that gets through
// is handled within microseconds of being sent (the positive controls wait for theirs).
const settle = 500 * time.Millisecond

// testForgedND: advertisements for the gateway's or the neighbour's link-local address,
// for a1's own address with another MAC, and a solicitation with another MAC, change
// neither the host's nor v1's neighbour table; a1's own advertisement does.
func testForgedND(t *testing.T, d *daemon, br netlink.Link, host, a, v *netPeer) {
	bogus := net.HardwareAddr{0x00, 0x16, 0x3e, 0xde, 0xad, 0x01}
	send := func(src, dst net.IP, dstMAC net.HardwareAddr, msg []byte) {
		t.Helper()
		err := sendFrames(a.pid, "eth0", ethFrame(dstMAC, a.mac, unix.ETH_P_IPV6, icmpv6Packet(src, dst, msg)))
		if err != nil {
			t.Fatal(err)
		}
	}

	// Positive control: the host's entry of a1 is wrong; a1's advertisement puts it right.
	setHostNeigh(t, br, a.ll, bogus)
	send(a.ll, allNodes6, allNodesMAC, neighborAdvert(a.ll, a.mac))
	if !waitFor(func() bool { return hostNeigh(t, br, a.ll) == a.mac.String() }) {
		t.Fatalf("a1's own advertisement did not reach the host: its entry of %s is %q", a.ll, hostNeigh(t, br, a.ll))
	}

	// v1 and the host know each other and the gateway.
	d.mustInside(v.name, "ping", "-6", "-c1", "-W2", host.ll.String()+"%eth0")
	setHostNeigh(t, br, v.ll, v.mac)
	if got := containerNeigh(d, v.name, host.ll); got != host.mac.String() {
		t.Fatalf("v1's entry of the gateway %s: %q, want %s", host.ll, got, host.mac)
	}

	// a1 claims the gateway's and v1's link-local addresses.
	send(a.ll, allNodes6, allNodesMAC, neighborAdvert(host.ll, a.mac))
	send(a.ll, allNodes6, allNodesMAC, neighborAdvert(v.ll, a.mac))
	// a1 advertises its own address at v1's MAC (stealing v1's traffic or blackholing its own).
	send(a.ll, allNodes6, allNodesMAC, neighborAdvert(a.ll, v.mac))
	time.Sleep(settle)
	if got := containerNeigh(d, v.name, host.ll); got != host.mac.String() {
		t.Errorf("after a1's advertisement for the gateway, v1's entry of %s is %q, want %s", host.ll, got, host.mac)
	}

	if got := hostNeigh(t, br, v.ll); got != v.mac.String() {
		t.Errorf("after a1's advertisement for v1, the host's entry of %s is %q, want %s", v.ll, got, v.mac)
	}

	if got := hostNeigh(t, br, a.ll); got != a.mac.String() {
		t.Errorf("after a1's advertisement with v1's MAC, the host's entry of %s is %q, want %s", a.ll, got, a.mac)
	}

	// A solicitation whose source link-layer option is v1's MAC: the host would note a1's
	// address at v1's MAC.
	ns := append(append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, host.ll.To16()...), 1, 1)
	send(a.ll, host.ll, host.mac, append(ns, v.mac...))
	time.Sleep(settle)
	if got := hostNeigh(t, br, a.ll); got != a.mac.String() {
		t.Errorf("after a1's solicitation with v1's MAC, the host's entry of %s is %q, want %s", a.ll, got, a.mac)
	}

	// Positive control on v1's side: the same path carries a1's own advertisement.
	d.mustInside(v.name, "ip", "-6", "neigh", "replace", a.ll.String(), "lladdr", bogus.String(), "dev", "eth0", "nud", "stale")
	send(a.ll, allNodes6, allNodesMAC, neighborAdvert(a.ll, a.mac))
	if !waitFor(func() bool { return containerNeigh(d, v.name, a.ll) == a.mac.String() }) {
		t.Fatalf("a1's own advertisement did not reach v1: its entry of %s is %q", a.ll, containerNeigh(d, v.name, a.ll))
	}
}

// testForgedSources: IPv6 from a link-local address that is not a1's, or from :: (but for
// neighbour discovery and MLD), does not reach the host; from a1's own it does.
func testForgedSources(t *testing.T, host, a *netPeer) {
	l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: host.ll, Zone: host.name})
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = l.Close() }()

	port := uint16(l.LocalAddr().(*net.UDPAddr).Port)
	for src, payload := range map[string]string{"fe80::dead:beef": "forged-ll", "::": "forged-unspec", a.ll.String(): "own-ll"} {
		udp := udp6Packet(net.ParseIP(src), host.ll, 40000, port, []byte(payload))
		err = sendFrames(a.pid, "eth0", ethFrame(host.mac, a.mac, unix.ETH_P_IPV6, udp))
		if err != nil {
			t.Fatal(err)
		}
	}

	got := []string{}
	buf := make([]byte, 64)
	_ = l.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, _, err := l.ReadFromUDP(buf)
		if err != nil {
			break
		}

		got = append(got, string(buf[:n]))
		if string(buf[:n]) == "own-ll" {
			_ = l.SetReadDeadline(time.Now().Add(settle))
		}
	}

	if !slices.Equal(got, []string{"own-ll"}) {
		t.Fatalf("the host received %q from a1, want only own-ll", got)
	}
}

// testForgedEthertypes: a1's frames of other ethertypes than ARP, IPv4 and IPv6 (VLAN
// tags, QinQ, PPPoE, LLDP, raw, IPX, 802.3) do not reach v1; its IPv4 does.
func testForgedEthertypes(t *testing.T, a, v *netPeer) {
	c, err := startCapture(v.pid, "eth0")
	if err != nil {
		t.Fatal(err)
	}

	defer c.stop()

	// Tagged: VLAN 5 carrying IPv4 from a1 to v1.
	frames := [][]byte{}
	for _, typ := range []uint16{0x8100, 0x88a8, 0x9100} {
		inner := ipv4Packet(a.ip, v.ip, unix.IPPROTO_UDP, udp4(40000, 40001, fmt.Appendf(nil, "berth-eth-%04x", typ)))
		frames = append(frames, ethFrame(v.mac, a.mac, typ, append([]byte{0, 5, 0x08, 0x00}, inner...)))
	}

	for _, typ := range []uint16{0x8863, 0x8864, 0x88b5, 0x8137, 0x88cc, 0x0040} {
		frames = append(frames, ethFrame(v.mac, a.mac, typ, fmt.Appendf(nil, "berth-eth-%04x%s", typ, make([]byte, 40))))
	}

	control := ethFrame(v.mac, a.mac, unix.ETH_P_IP, ipv4Packet(a.ip, v.ip, unix.IPPROTO_UDP, udp4(40000, 40001, []byte("berth-ctl-ipv4"))))
	err = sendFrames(a.pid, "eth0", append(frames, control)...)
	if err != nil {
		t.Fatal(err)
	}

	if c.wait([]byte("berth-ctl-ipv4"), 5*time.Second) == nil {
		t.Fatal("v1 did not receive a1's IPv4 frame")
	}

	time.Sleep(settle)
	if f := c.find([]byte("berth-eth-")); f != nil {
		marker := f[bytes.Index(f, []byte("berth-eth-")):]
		t.Fatalf("v1 received a1's frame %q (as ethertype %#04x after the kernel took any tag off): %x",
			marker[:min(len(marker), 16)], binary.BigEndian.Uint16(f[12:]), f)
	}
}

// leaseOf is the dnsmasq lease line of mac, "" without one.
func leaseOf(t *testing.T, path string, mac net.HardwareAddr) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	for l := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[1] == mac.String() {
			return l
		}
	}

	return ""
}

// testForgedDHCP: a1 declines and releases v1's lease, as v1 (its MAC as chaddr) or as
// itself with v1's client identifier (which v1 broadcasts in its DISCOVER); v1's lease is
// untouched. a1's own DISCOVER gets an offer, after the forged messages (so dnsmasq has
// read them, had they got through).
func testForgedDHCP(t *testing.T, leases string, host, a, v *netPeer) {
	before := leaseOf(t, leases, v.mac)
	if before == "" {
		t.Fatalf("v1 (%s) has no lease in %s", v.mac, leases)
	}

	// v1's client identifier as dnsmasq recorded it (without dhcp-ignore-clid), else the
	// DUID-based one systemd-networkd sends: a1 would read it off v1's broadcast DISCOVER.
	clid := []byte{0xff, 1, 2, 3, 4, 0, 2, 0, 0, 0xab, 0x11}
	if f := strings.Fields(before); f[4] != "*" {
		b, err := hex.DecodeString(strings.ReplaceAll(f[4], ":", ""))
		if err == nil {
			clid = b
		}
	}

	server := dhcpOpt(54, host.ip.To4())
	bcast := func(msg []byte) []byte {
		return ethFrame(broadcastMAC, a.mac, unix.ETH_P_IP, ipv4Packet(net.IPv4zero, net.IPv4bcast, unix.IPPROTO_UDP, udp4(68, 67, msg)))
	}

	const dhcpDecline, dhcpRelease, dhcpDiscover = 4, 7, 1
	forged := [][]byte{
		// v1's MAC, from 0.0.0.0 and from a1's own address.
		bcast(dhcpMessage(dhcpDecline, 1, v.mac, nil, dhcpOpt(50, v.ip.To4()), server, dhcpOpt(61, clid))),
		ethFrame(host.mac, a.mac, unix.ETH_P_IP, ipv4Packet(a.ip, host.ip, unix.IPPROTO_UDP,
			udp4(68, 67, dhcpMessage(dhcpRelease, 2, v.mac, v.ip, server, dhcpOpt(61, clid))))),
		// a1's MAC with v1's client identifier.
		bcast(dhcpMessage(dhcpDecline, 3, a.mac, nil, dhcpOpt(50, v.ip.To4()), server, dhcpOpt(61, clid))),
		ethFrame(host.mac, a.mac, unix.ETH_P_IP, ipv4Packet(a.ip, host.ip, unix.IPPROTO_UDP,
			udp4(68, 67, dhcpMessage(dhcpRelease, 4, a.mac, v.ip, server, dhcpOpt(61, clid))))),
	}

	c, err := startCapture(a.pid, "eth0")
	if err != nil {
		t.Fatal(err)
	}

	defer c.stop()

	xid := []byte{0xb3, 0xa7, 0xc5, 0xd1}
	discover := bcast(dhcpMessage(dhcpDiscover, binary.BigEndian.Uint32(xid), a.mac, nil))
	err = sendFrames(a.pid, "eth0", append(forged, discover)...)
	if err != nil {
		t.Fatal(err)
	}

	// The offer: BOOTREPLY (op 2, Ethernet, 6) with a1's xid.
	offer := c.wait(append([]byte{2, 1, 6, 0}, xid...), 5*time.Second)
	if offer == nil {
		t.Fatal("a1's own DISCOVER got no offer")
	}

	if !bytes.Contains(offer, a.mac) || !bytes.Contains(offer, a.ip.To4()) {
		t.Fatalf("the offer to a1 is not for its MAC and address: %x", offer)
	}

	time.Sleep(settle)
	if after := leaseOf(t, leases, v.mac); after != before {
		t.Fatalf("v1's lease changed after a1's forged DHCP messages:\nbefore %q\nafter  %q", before, after)
	}
}
