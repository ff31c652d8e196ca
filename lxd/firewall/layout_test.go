package firewall

import (
	"net"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// TestOlderLayoutConverted: a table as an older berthd wrote it (one jump rule per port in
// the base chain, the ACL key in its user data, one ACL jump rule per port and hook) is
// converted by the next PortAdd: the old port keeps its chain, key and ACL set, reached
// through the maps.
func TestOlderLayoutConverted(t *testing.T) {
	bridge := testBridge(t, "bo")

	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	mac, _ := net.ParseMAC("00:16:3e:01:02:07")
	tbl := c.AddTable(bridgeTable(bridge))
	base := c.AddChain(baseChain(tbl))
	ch := c.AddChain(&nftables.Chain{Name: portChainPrefix + "vetholda", Table: tbl})
	for _, r := range portRules(Port{MAC: mac, IP: net.ParseIP("10.251.5.7")}) {
		c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r})
	}

	jump := func(to string) []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: to}} }
	c.AddRule(&nftables.Rule{Table: tbl, Chain: base, UserData: []byte("vetholda\x00web"),
		Exprs: rule(metaIs(expr.MetaKeyIIFNAME, ifname("vetholda")), jump(ch.Name))})
	old := map[string]*nftables.Chain{}
	for _, dir := range []string{"out", "in"} {
		old[dir] = c.AddChain(&nftables.Chain{Name: aclSetPrefix + dir + "-0", Table: tbl})
		c.AddRule(&nftables.Rule{Table: tbl, Chain: old[dir], Exprs: []expr.Any{verdict(expr.VerdictAccept)}})
	}

	for i, b := range aclBase(tbl)[:3] {
		c.AddChain(b)
		key, dir := expr.MetaKeyOIFNAME, "in"
		if i == 0 {
			key, dir = expr.MetaKeyIIFNAME, "out"
		}

		c.AddRule(&nftables.Rule{Table: tbl, Chain: b, UserData: []byte("vetholda"),
			Exprs: rule(metaIs(key, ifname("vetholda")), jump(old[dir].Name))})
	}

	err = c.Flush()
	if err != nil {
		t.Fatal(err)
	}

	mac2, _ := net.ParseMAC("00:16:3e:01:02:08")
	_, err = PortAdd(bridge, "vethnewb", Port{MAC: mac2, IP: net.ParseIP("10.251.5.8")})
	if err != nil {
		t.Fatal(err)
	}

	for i, b := range append([]*nftables.Chain{baseChain(tbl)}, aclBase(tbl)[:3]...) {
		m := []string{portMapName, aclOutMap, aclInMap, aclInMap}[i]
		rules, err := c.GetRules(tbl, b)
		if err != nil || len(rules) != 1 || !isVmapRule(rules[0], m) {
			t.Fatalf("%s after the conversion: %d rules (%v)", b.Name, len(rules), err)
		}
	}

	elems, err := c.GetSetElements(verdictMap(tbl, portMapName))
	if err != nil || len(elems) != 2 {
		t.Fatalf("port map: %d elements (%v)", len(elems), err)
	}

	key, had, err := portKeyOf(c, tbl, "vetholda")
	if err != nil || !had || key != "web" {
		t.Fatalf("key of the old port: %q %v (%v)", key, had, err)
	}

	jumps, err := aclPortJumps(c, tbl, "vetholda")
	if err != nil || len(jumps) != 3 || jumps[0] != old["out"].Name || jumps[1] != old["in"].Name {
		t.Fatalf("ACL jumps of the old port: %v (%v)", jumps, err)
	}

	// Converted once: a second port leaves the maps' lookups alone.
	_, err = PortAdd(bridge, "vethnewc", Port{MAC: mac2, IP: net.ParseIP("10.251.5.9")})
	if err != nil {
		t.Fatal(err)
	}

	rules, err := c.GetRules(tbl, baseChain(tbl))
	if err != nil || len(rules) != 1 {
		t.Fatalf("base chain after another port: %d rules (%v)", len(rules), err)
	}
}
