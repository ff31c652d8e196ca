package firewall

import (
	"net"
	"slices"
	"testing"

	"github.com/google/nftables"
)

// TestForwardsAndACLsKeepTheirChains: ApplyNAT leaves the forward chains alone; a port
// added after ApplyACLs gets its ACL jumps, PortDel takes them away, and ApplyACLs with
// no set (nil, or none for any key) empties the ACL chains.
func TestForwardsAndACLsKeepTheirChains(t *testing.T) {
	bridge := testBridge(t, "ba")

	_, subnet, _ := net.ParseCIDR("10.251.4.0/24")
	err := ApplyNAT(bridge, NAT{Subnet: subnet, NAT: true})
	if err != nil {
		t.Fatal(err)
	}

	err = ApplyForwards(bridge, []ForwardRule{
		{Listen: net.ParseIP("192.0.2.1"), Protocol: "tcp", ListenPort: 80, Target: net.ParseIP("10.251.4.2"), TargetPort: 8080},
		{Listen: net.ParseIP("192.0.2.1"), Target: net.ParseIP("10.251.4.3")},
	})
	if err != nil {
		t.Fatal(err)
	}

	err = ApplyNAT(bridge, NAT{Subnet: subnet, NAT: false})
	if err != nil {
		t.Fatal(err)
	}

	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	inet := &nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet}
	for _, ch := range []string{forwardPrerouting, forwardOutput} {
		rules, err := c.GetRules(inet, &nftables.Chain{Name: ch, Table: inet})
		if err != nil || len(rules) != 2 {
			t.Fatalf("%s after ApplyNAT: %d rules (%v)", ch, len(rules), err)
		}
	}

	err = ApplyForwards(bridge, []ForwardRule{{Listen: net.ParseIP("192.0.2.1"), Target: net.ParseIP("fd00::1")}})
	if err == nil {
		t.Fatal("a forward across families was written")
	}

	set := &ACLSet{Gateway: net.ParseIP("10.251.4.1"), IngressDrop: true, IngressReject: true,
		Ingress: []ACLRule{{Source: &ACLAddr{From: net.ParseIP("10.251.4.5").To4(), To: net.ParseIP("10.251.4.5").To4()}, ICMPType: -1, ICMPCode: -1}}}
	// Ports with key "web" get set; the others nothing.
	sets := func(key string) (*ACLSet, error) {
		if key == "web" {
			return set, nil
		}

		return nil, nil
	}

	mac, _ := net.ParseMAC("00:16:3e:01:02:04")
	mac2, _ := net.ParseMAC("00:16:3e:01:02:05")
	for _, p := range []struct {
		name string
		port Port
	}{
		{"vethacl1", Port{MAC: mac, IP: net.ParseIP("10.251.4.5"), ACL: "web"}},
		{"vethacl2", Port{MAC: mac2, IP: net.ParseIP("10.251.4.6")}},
	} {
		_, err = PortAdd(bridge, p.name, p.port)
		if err != nil {
			t.Fatal(err)
		}
	}

	tbl := bridgeTable(bridge)
	jumpsOf := func(port string) int {
		t.Helper()
		jumps, err := aclPortJumps(c, tbl, port)
		if err != nil {
			t.Fatal(err)
		}

		for _, j := range jumps {
			if j != setChain("out", "web") && j != setChain("in", "web") {
				t.Fatalf("%s jumps to %s", port, j)
			}
		}

		return len(jumps)
	}

	if n := jumpsOf("vethacl1"); n != 0 {
		t.Fatalf("ACL jumps before ApplyACLs: %d", n)
	}

	err = ApplyACLs(bridge, sets)
	if err != nil {
		t.Fatal(err)
	}

	if n1, n2 := jumpsOf("vethacl1"), jumpsOf("vethacl2"); n1 != 3 || n2 != 0 {
		t.Fatalf("ACL jumps after ApplyACLs: %d and %d, want 3 and 0", n1, n2)
	}

	// Added again (a new berthd refreshing it): the same jumps, once.
	_, err = PortAdd(bridge, "vethacl1", Port{MAC: mac, IP: net.ParseIP("10.251.4.5"), ACL: "web"})
	if err != nil {
		t.Fatal(err)
	}

	if n := jumpsOf("vethacl1"); n != 3 {
		t.Fatalf("ACL jumps after adding the port again: %d", n)
	}

	// A new port with a key the bridge has gets its jumps from PortAdd.
	mac3, _ := net.ParseMAC("00:16:3e:01:02:06")
	_, err = PortAdd(bridge, "vethacl3", Port{MAC: mac3, IP: net.ParseIP("10.251.4.7"), ACL: "web"})
	if err != nil {
		t.Fatal(err)
	}

	if n := jumpsOf("vethacl3"); n != 3 {
		t.Fatalf("ACL jumps of a new port with a known key: %d", n)
	}

	// No ACL exists (nil sets, the ports' keys not read): no port jumps anywhere, and the
	// key's chains are gone. Applying the sets again brings the jumps back.
	err = ApplyACLs(bridge, nil)
	if err != nil {
		t.Fatal(err)
	}

	if n1, n3 := jumpsOf("vethacl1"), jumpsOf("vethacl3"); n1 != 0 || n3 != 0 {
		t.Fatalf("ACL jumps after ApplyACLs(nil): %d and %d", n1, n3)
	}

	if ok, err := hasSet(c, tbl, "web"); ok || err != nil {
		t.Fatalf("the chains of key web after ApplyACLs(nil): %v (%v)", ok, err)
	}

	err = ApplyACLs(bridge, sets)
	if err != nil {
		t.Fatal(err)
	}

	if n1, n3 := jumpsOf("vethacl1"), jumpsOf("vethacl3"); n1 != 3 || n3 != 3 {
		t.Fatalf("ACL jumps after applying the sets again: %d and %d", n1, n3)
	}

	// Another key: the port loses its jumps until the ACLs are applied again.
	_, err = PortAdd(bridge, "vethacl1", Port{MAC: mac, IP: net.ParseIP("10.251.4.5"), ACL: "db"})
	if err != nil {
		t.Fatal(err)
	}

	keys, err := portKeys(c, tbl)
	if err != nil || keys["vethacl1"] != "db" || keys["vethacl3"] != "web" || keys["vethacl2"] != "" {
		t.Fatalf("port keys %v (%v)", keys, err)
	}

	if n := jumpsOf("vethacl1"); n != 0 {
		t.Fatalf("ACL jumps after the key changed: %d", n)
	}

	for _, p := range []string{"vethacl1", "vethacl2", "vethacl3"} {
		err = PortDel(bridge, p)
		if err != nil {
			t.Fatal(err)
		}

		if n := jumpsOf(p); n != 0 {
			t.Fatalf("ACL jumps of %s after PortDel: %d", p, n)
		}
	}

	err = ApplyACLs(bridge, func(string) (*ACLSet, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		t.Fatal(err)
	}

	for _, ch := range chains {
		if ch.Table.Name == tbl.Name && isACLRuleChain(ch.Name) {
			t.Fatalf("ACL chain %s left after ApplyACLs without sets", ch.Name)
		}
	}
}

// aclPortJumps returns the chains port's frames jump to from the ACL base chains, in
// their order (egress, ingress forward, ingress output; none without a set).
func aclPortJumps(c *nftables.Conn, t *nftables.Table, port string) ([]string, error) {
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, err
	}

	out, in := aclMaps(t)
	var jumps []string
	for _, m := range []*nftables.Set{out, in, in} {
		if !slices.ContainsFunc(sets, func(s *nftables.Set) bool { return s.Name == m.Name }) {
			continue
		}

		elems, err := c.GetSetElements(m)
		if err != nil {
			return nil, err
		}

		for _, e := range elems {
			if string(e.Key) == string(ifname(port)) {
				jumps = append(jumps, elemJump(e))
			}
		}
	}

	return jumps, nil
}
