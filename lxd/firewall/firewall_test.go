package firewall

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"

	"github.com/google/nftables"

	"github.com/berth-dev/berth/test/testutil"
)

// TestTablesLifecycle: NAT, ports and their removal, on a bridge's tables (testBridge).
func TestTablesLifecycle(t *testing.T) {
	bridge := testBridge(t, "bt")

	_, subnet, _ := net.ParseCIDR("10.251.3.0/24")
	_, prefix6, _ := net.ParseCIDR("fd42:1:2:3::/64")
	err := ApplyNAT(bridge, NAT{Subnet: subnet, NAT: true, Prefix6: prefix6, NAT6: true})
	if err != nil {
		t.Fatal(err)
	}

	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	inet := &nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet}
	masq, err := c.GetRules(inet, &nftables.Chain{Name: "postrouting", Table: inet})
	if err != nil || len(masq) != 2 {
		t.Fatalf("masquerade rules for IPv4 and IPv6: %d (%v)", len(masq), err)
	}

	// Re-applying replaces, it does not fail or duplicate.
	err = ApplyNAT(bridge, NAT{Subnet: subnet, NAT: false, Prefix6: prefix6, NAT6: true})
	if err != nil {
		t.Fatal(err)
	}

	masq, err = c.GetRules(inet, &nftables.Chain{Name: "postrouting", Table: inet})
	if err != nil || len(masq) != 1 {
		t.Fatalf("masquerade rules for IPv6 only: %d (%v)", len(masq), err)
	}

	mac, _ := net.ParseMAC("00:16:3e:01:02:03")
	for i, port := range []string{"vethaaaa", "vethbbbb", "vethaaaa"} {
		wrote, err := PortAdd(bridge, port, Port{MAC: mac, IP: net.ParseIP("10.251.3.7"), IP6: net.ParseIP("fd42:1:2:3:216:3eff:fe01:203")})
		if err != nil {
			t.Fatal(err)
		}

		if want := i < 2; wrote != want {
			t.Fatalf("PortAdd %d (%s) wrote %v, want %v (the third is unchanged)", i, port, wrote, want)
		}
	}

	// Adding a port again duplicated nothing: one lookup rule, one element per port, one
	// chain's worth of rules.
	tbl := bridgeTable(bridge)
	base, err := c.GetRules(tbl, baseChain(tbl))
	if err != nil || len(base) != 1 || !isVmapRule(base[0], portMapName) {
		t.Fatalf("base chain after adding 3 ports: %d rules (%v)", len(base), err)
	}

	elems, err := c.GetSetElements(verdictMap(tbl, portMapName))
	if err != nil || len(elems) != 2 {
		t.Fatalf("port map after adding vethaaaa twice and vethbbbb: %d elements (%v)", len(elems), err)
	}

	for _, e := range elems {
		name := string(bytes.TrimRight(e.Key, "\x00"))
		if to := elemJump(e); to != portChainPrefix+name {
			t.Fatalf("port map element %q jumps to %q", name, to)
		}
	}

	a, errA := c.GetRules(tbl, &nftables.Chain{Name: portChainPrefix + "vethaaaa", Table: tbl})
	b, errB := c.GetRules(tbl, &nftables.Chain{Name: portChainPrefix + "vethbbbb", Table: tbl})
	if errA != nil || errB != nil || len(a) == 0 || len(a) != len(b) {
		t.Fatalf("rules of vethaaaa (added twice) %d, of vethbbbb (once) %d: %v %v", len(a), len(b), errA, errB)
	}

	ports, err := Ports(bridge)
	if err != nil {
		t.Fatal(err)
	}

	slices.Sort(ports)
	if !slices.Equal(ports, []string{"vethaaaa", "vethbbbb"}) {
		t.Fatalf("ports %v", ports)
	}

	err = PortDel(bridge, "vethaaaa")
	if err != nil {
		t.Fatal(err)
	}

	err = PortDel(bridge, "vethaaaa") // twice is fine
	if err != nil {
		t.Fatal(err)
	}

	ports, _ = Ports(bridge)
	if !slices.Equal(ports, []string{"vethbbbb"}) {
		t.Fatalf("ports after delete %v", ports)
	}

	for _, fam := range []string{"inet", "bridge"} {
		names, err := Tables(fam)
		if err != nil {
			t.Fatal(err)
		}

		if !slices.Contains(names, TableName(bridge)) {
			t.Fatalf("%s tables %v lack ours", fam, names)
		}
	}

	err = Remove(bridge)
	if err != nil {
		t.Fatal(err)
	}

	for _, fam := range []string{"inet", "bridge"} {
		names, _ := Tables(fam)
		if slices.Contains(names, TableName(bridge)) {
			t.Fatalf("%s table left after Remove: %v", fam, names)
		}
	}

	err = Remove(bridge)
	if err != nil {
		t.Fatalf("second Remove: %v", err)
	}

	err = PortDel(bridge, "vethbbbb")
	if err != nil {
		t.Fatalf("PortDel without table: %v", err)
	}
}

func TestPortAddNeedsAddresses(t *testing.T) {
	_, err := PortAdd("x", "y", Port{IP: net.ParseIP("10.0.0.1")})
	if err == nil {
		t.Fatal("PortAdd accepted a port without MAC")
	}

	mac, _ := net.ParseMAC("00:16:3e:01:02:03")
	_, err = PortAdd("x", "y", Port{MAC: mac, IP: net.ParseIP("10.0.0.1"), IP6: net.ParseIP("10.0.0.2")})
	if err == nil {
		t.Fatal("PortAdd accepted an IPv4 address as IP6")
	}
}

// testBridge names a bridge for a test's nftables tables (no such link exists: nftables
// does not care, and nothing of the host's traffic can match) and removes them after it.
func testBridge(t *testing.T, prefix string) string {
	t.Helper()
	testutil.RequireRoot(t, "use nftables")
	bridge := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	t.Cleanup(func() { _ = Remove(bridge) })

	return bridge
}
