package firewall

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/google/nftables"

	"github.com/berth-dev/berth/test/testutil"
)

// TestForwardsAndACLsKeepTheirChains: ApplyNAT leaves the forward chains alone; a port
// added after ApplyACLs gets its ACL jumps, PortDel takes them away, and ApplyACLs(nil)
// empties the ACL chains.
func TestForwardsAndACLsKeepTheirChains(t *testing.T) {
	testutil.RequireRoot(t, "use nftables")
	bridge := fmt.Sprintf("ba%d", os.Getpid()%100000)
	t.Cleanup(func() { _ = Remove(bridge) })

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

	err = ApplyACLs(bridge, &ACLSet{Gateway: net.ParseIP("10.251.4.1"), IngressDrop: true,
		Ingress: []ACLRule{{Source: &ACLAddr{From: net.ParseIP("10.251.4.5").To4(), To: net.ParseIP("10.251.4.5").To4()}, ICMPType: -1, ICMPCode: -1}}})
	if err != nil {
		t.Fatal(err)
	}

	mac, _ := net.ParseMAC("00:16:3e:01:02:04")
	err = PortAdd(bridge, "vethacl1", Port{MAC: mac, IP: net.ParseIP("10.251.4.5")})
	if err != nil {
		t.Fatal(err)
	}

	tbl := bridgeTable(bridge)
	jumps, active, err := aclPortJumps(c, tbl, "vethacl1")
	if err != nil || !active || len(jumps) != 3 {
		t.Fatalf("ACL jumps of a new port: %d, active %v (%v)", len(jumps), active, err)
	}

	err = PortAdd(bridge, "vethacl1", Port{MAC: mac, IP: net.ParseIP("10.251.4.5")})
	if err != nil {
		t.Fatal(err)
	}

	jumps, _, _ = aclPortJumps(c, tbl, "vethacl1")
	if len(jumps) != 3 {
		t.Fatalf("ACL jumps after adding the port again: %d", len(jumps))
	}

	err = PortDel(bridge, "vethacl1")
	if err != nil {
		t.Fatal(err)
	}

	jumps, _, _ = aclPortJumps(c, tbl, "vethacl1")
	if len(jumps) != 0 {
		t.Fatalf("ACL jumps after PortDel: %d", len(jumps))
	}

	err = ApplyACLs(bridge, nil)
	if err != nil {
		t.Fatal(err)
	}

	_, active, _ = aclPortJumps(c, tbl, "vethacl1")
	if active {
		t.Fatal("ACL rules left after ApplyACLs(nil)")
	}
}
