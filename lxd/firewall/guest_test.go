package firewall

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// TestPortRulesDebianGuest: every frame a Debian 12 container (systemd-networkd, kernel
// neighbour discovery with duplicate address detection turned back on) sent through its
// port while booting, taking its link down and up, renewing DHCP, restarting networkd and
// talking to the gateway in both families passes the filter of that port. The frames
// were captured on the port (testdata/debian12-guest.txt: the port's MAC, IPv4 and IPv6
// addresses on the first line, then one frame in hex a line).
func TestPortRulesDebianGuest(t *testing.T) {
	f, err := os.Open("testdata/debian12-guest.txt")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	sc.Scan()
	head := strings.Fields(sc.Text())
	if len(head) != 3 {
		t.Fatalf("first line %q: want MAC IPv4 IPv6", sc.Text())
	}

	mac, err := net.ParseMAC(head[0])
	if err != nil {
		t.Fatal(err)
	}

	rules := portRules(Port{MAC: mac, IP: net.ParseIP(head[1]), IP6: net.ParseIP(head[2])})
	kinds := map[string]int{}
	for sc.Scan() {
		frame, err := hex.DecodeString(sc.Text())
		if err != nil {
			t.Fatal(err)
		}

		kind := describe(frame)
		kinds[kind]++
		if got := evalChain(rules, frame); got != "accept" {
			t.Errorf("dropped %s: %x", kind, frame)
		}
	}

	if len(kinds) < 5 {
		t.Fatalf("too few kinds of frames in the capture: %v", kinds)
	}

	t.Logf("frames by kind: %v", kinds)
}

// describe names a frame's kind for the messages: ethertype, and for IPv6 the source and
// ICMPv6 type or transport protocol.
func describe(f []byte) string {
	typ := binary.BigEndian.Uint16(f[12:])
	pk := parseFrame(f)
	switch {
	case typ == etherTypeIPv6 && pk.l4:
		src := net.IP(f[ethHdr+8 : ethHdr+24])
		kind := "ll"
		switch {
		case src.IsUnspecified():
			kind = "::"
		case !src.IsLinkLocalUnicast():
			kind = "global"
		}

		if pk.tprot == 58 {
			return fmt.Sprintf("ipv6 from %s icmpv6 %d", kind, f[ethHdr+pk.thoff])
		}

		return fmt.Sprintf("ipv6 from %s proto %d", kind, pk.tprot)
	case typ == etherTypeIPv4 && pk.l4:
		if pk.tprot == 17 && binary.BigEndian.Uint16(f[ethHdr+pk.thoff+2:]) == 67 {
			return "dhcp client"
		}

		return fmt.Sprintf("ipv4 proto %d", pk.tprot)
	}

	return fmt.Sprintf("ethertype %#04x", typ)
}
