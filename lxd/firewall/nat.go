package firewall

import (
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ApplyNAT replaces the inet table of a bridge network in one atomic batch: with nat, a
// postrouting chain masquerading what the subnet sends outside itself; without, an empty
// table (kept so that Remove has one thing to delete).
func ApplyNAT(bridge string, subnet *net.IPNet, nat bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}

	t := &nftables.Table{Name: TableName(bridge), Family: nftables.TableFamilyINet}
	// add + delete + add: replaces the table whether or not it existed, atomically.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)

	if nat {
		ch := c.AddChain(&nftables.Chain{
			Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		})

		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rule(
			metaIs(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV4}),
			inSubnet(expr.PayloadBaseNetworkHeader, 12, expr.CmpOpEq, subnet),
			inSubnet(expr.PayloadBaseNetworkHeader, 16, expr.CmpOpNeq, subnet),
			[]expr.Any{&expr.Masq{}},
		)})
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
