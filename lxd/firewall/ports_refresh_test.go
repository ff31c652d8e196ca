package firewall

import (
	"net"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// A restarting berthd adds the port of every running container again. PortAdd writes only
// a port whose chain differs from what it would write (another address or ACL key, a rule
// missing or replaced) or that the port map does not reach. Whatever it leaves, it leaves
// whole: the chain's rules and the port map's element.
func TestPortAddWritesOnlyWhatChanged(t *testing.T) {
	bridge := testBridge(t, "bu")

	mac, _ := net.ParseMAC("00:16:3e:01:02:04")
	p := Port{MAC: mac, IP: net.ParseIP("10.251.6.7"), ACL: "web"}
	const port = "vethref1"
	add := func(step string, p Port, want bool) {
		t.Helper()
		wrote, err := PortAdd(bridge, port, p)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}

		if wrote != want {
			t.Fatalf("%s: PortAdd wrote %v, want %v", step, wrote, want)
		}
	}

	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	tbl := bridgeTable(bridge)
	ch := &nftables.Chain{Name: portChainPrefix + port, Table: tbl}
	rulesNow := func() []*nftables.Rule {
		t.Helper()
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatal(err)
		}

		return rules
	}

	add("first add", p, true)
	want := len(portRules(p))
	if n := len(rulesNow()); n != want {
		t.Fatalf("chain has %d rules, want %d", n, want)
	}

	add("unchanged", p, false)
	if n := len(rulesNow()); n != want {
		t.Fatalf("chain has %d rules after an unchanged add, want %d", n, want)
	}

	moved := p
	moved.IP = net.ParseIP("10.251.6.8")
	add("new address", moved, true)
	if !holds(rulesNow(), portRules(moved), portUserData(port, moved.ACL)) || holds(rulesNow(), portRules(p), portUserData(port, p.ACL)) {
		t.Fatal("the chain does not hold the new address's rules alone")
	}

	add("new address, again", moved, false)

	keyed := moved
	keyed.ACL = "db"
	add("new ACL key", keyed, true)

	// A rule gone from the chain: written again, whole.
	rules := rulesNow()
	err = c.DelRule(rules[len(rules)/2])
	if err == nil {
		err = c.Flush()
	}

	if err != nil {
		t.Fatal(err)
	}

	add("a rule deleted", keyed, true)
	if n := len(rulesNow()); n != want {
		t.Fatalf("chain has %d rules after the rewrite, want %d", n, want)
	}

	// A rule replaced by a plain accept (same count, same first rule): written again.
	rules = rulesNow()
	mid := rules[len(rules)/2]
	mid.Exprs = []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	c.ReplaceRule(mid)
	err = c.Flush()
	if err != nil {
		t.Fatal(err)
	}

	if holds(rulesNow(), portRules(keyed), portUserData(port, keyed.ACL)) {
		t.Fatal("the chain with an accept in it still holds the port's rules")
	}

	add("a rule replaced", keyed, true)
	if !holds(rulesNow(), portRules(keyed), portUserData(port, keyed.ACL)) {
		t.Fatal("the rewritten chain does not hold the port's rules")
	}

	// The port map's element gone, the chain left: the element is written again.
	err = delElem(c, verdictMap(tbl, portMapName), port, ch.Name)
	if err == nil {
		err = c.Flush()
	}

	if err != nil {
		t.Fatal(err)
	}

	add("the map element deleted", keyed, true)
	add("the map element back", keyed, false)

	elems, err := c.GetSetElements(verdictMap(tbl, portMapName))
	if err != nil || len(elems) != 1 || elemJump(elems[0]) != ch.Name {
		t.Fatalf("port map: %v (%v)", elems, err)
	}
}

// elemJump reads a verdict the library leaves undecoded: whatever the bytes, it returns a
// chain only for a well-formed jump, and never panics.
func TestElemJumpMalformed(t *testing.T) {
	jump := []byte{
		8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfd, // NFTA_VERDICT_CODE: NFT_JUMP (-3)
		12, 0, 2, 0, 'p', 'o', 'r', 't', '-', 'x', 0, 0, // NFTA_VERDICT_CHAIN "port-x"
	}
	if got := elemJump(nftables.SetElement{Val: jump}); got != "port-x" {
		t.Fatalf("well-formed jump: %q", got)
	}

	for i := range len(jump) {
		for _, b := range [][]byte{jump[:i], append(append([]byte{}, jump[:i]...), 0xff, 0xff, 0xff)} {
			if got := elemJump(nftables.SetElement{Val: b}); got != "" && i < 8 {
				t.Errorf("%d bytes: %q, want no chain without a verdict code", i, got)
			}
		}
	}

	goTo := append([]byte{8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfc}, jump[8:]...) // NFT_GOTO (-4)
	if got := elemJump(nftables.SetElement{Val: goTo}); got != "" {
		t.Errorf("goto read as a jump to %q", got)
	}
}
