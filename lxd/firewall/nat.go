package firewall

import (
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NAT is the outbound translation of a bridge network.
type NAT struct {
	Subnet  *net.IPNet // IPv4
	NAT     bool       // masquerade what Subnet sends outside itself
	Prefix6 *net.IPNet // IPv6, nil without
	NAT6    bool       // masquerade what Prefix6 sends outside itself
}

// ApplyNAT replaces the masquerading of a bridge network in its inet table, in one atomic
// batch: a postrouting chain masquerading what each family's subnet sends outside itself,
// where asked (without NAT the chain is empty). The table's other chains (forwards.go)
// are left as they are.
func ApplyNAT(bridge string, n NAT) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := c.AddTable(&nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet})
	// add + flush: the chain exists and is empty whether or not it existed, atomically with
	// the rules that follow.
	ch := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	c.FlushChain(ch)

	masq := map[byte]*net.IPNet{}
	if n.NAT {
		masq[unix.NFPROTO_IPV4] = n.Subnet
	}

	if n.NAT6 && n.Prefix6 != nil {
		masq[unix.NFPROTO_IPV6] = n.Prefix6
	}

	if len(masq) > 0 {
		// Source and destination offsets in the network header of each family.
		offsets := map[byte][2]uint32{unix.NFPROTO_IPV4: {12, 16}, unix.NFPROTO_IPV6: {8, 24}}
		for _, proto := range []byte{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
			subnet, ok := masq[proto]
			if !ok {
				continue
			}

			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rule(
				metaIs(expr.MetaKeyNFPROTO, []byte{proto}),
				inSubnet(expr.PayloadBaseNetworkHeader, offsets[proto][0], expr.CmpOpEq, subnet),
				inSubnet(expr.PayloadBaseNetworkHeader, offsets[proto][1], expr.CmpOpNeq, subnet),
				[]expr.Any{&expr.Masq{}},
			)})
		}
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("writing nftables table %s: %w", t.Name, err)
	}

	return nil
}

// Remove deletes both tables of a bridge network; missing tables are fine.
func Remove(bridge string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
		t := &nftables.Table{Name: TableName(bridge), Family: fam}
		c.AddTable(t)
		c.DelTable(t)
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("deleting nftables tables of %s: %w", bridge, err)
	}

	return nil
}

// Tables lists the names of Berth's tables in a family ("inet" or "bridge").
func Tables(family string) ([]string, error) {
	fam := nftables.TableFamilyINet
	if family == "bridge" {
		fam = nftables.TableFamilyBridge
	}

	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}

	ts, err := c.ListTablesOfFamily(fam)
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables: %w", err)
	}

	out := []string{}
	for _, t := range ts {
		if len(t.Name) > len(TablePrefix) && t.Name[:len(TablePrefix)] == TablePrefix {
			out = append(out, t.Name)
		}
	}

	return out, nil
}
