package firewall

import (
	"bytes"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// mapped reads one element of the port map by its key: it finds the jump of each port,
// tells a jump to another chain and a plain verdict from it, and finds nothing, without an
// error, for a key, a map or a table that does not exist. What it reads is what a dump of
// the whole map holds for that key.
func TestMappedReadsOneElement(t *testing.T) {
	bridge := testBridge(t, "bm")
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	tbl := c.AddTable(bridgeTable(bridge))
	m := verdictMap(tbl, portMapName)
	err = c.AddSet(m, nil)
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"va", "vb"} {
		c.AddChain(&nftables.Chain{Name: portChainPrefix + p, Table: tbl})
	}

	elems := append(jumpElem("va", "port-va"), jumpElem("vb", "port-vb")...)
	elems = append(elems, nftables.SetElement{Key: ifname("vc"), VerdictData: &expr.Verdict{Kind: expr.VerdictAccept}})
	err = c.SetAddElements(m, elems)
	if err == nil {
		err = c.Flush()
	}

	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		port, chain string
		want        bool
	}{
		{"va", "port-va", true},
		{"va", "port-vb", false},
		{"vb", "port-vb", true},
		{"vc", "port-vc", false},
		{"vd", "port-vd", false},
		{"v", "port-va", false}, // a prefix of a key is another key
	} {
		got, err := mapped(m, tc.port, tc.chain)
		if err != nil || got != tc.want {
			t.Errorf("mapped(%s, %s) = %v, %v; want %v", tc.port, tc.chain, got, err, tc.want)
		}
	}

	dump, err := c.GetSetElements(m)
	if err != nil || len(dump) != 3 {
		t.Fatalf("dump of the map: %d elements, %v", len(dump), err)
	}

	for _, e := range dump {
		port := string(bytes.TrimRight(e.Key, "\x00"))
		data, found, err := mapElem(m, port)
		if err != nil || !found || !bytes.Equal(data, e.Val) {
			t.Errorf("element %s: %x found=%v %v; the dump has %x", port, data, found, err, e.Val)
		}
	}

	for _, gone := range []*nftables.Set{verdictMap(tbl, "nosuchmap"), verdictMap(bridgeTable(bridge+"x"), portMapName)} {
		got, err := mapped(gone, "va", "port-va")
		if err != nil || got {
			t.Errorf("mapped in %s/%s, which does not exist: %v, %v", gone.Table.Name, gone.Name, got, err)
		}
	}
}
