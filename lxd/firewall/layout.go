package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// portLayout says whether a bridge table lacks the port map's lookup (fresh: PortAdd
// writes it with its first port), and converts the layout of an older berthd first.
func portLayout(c *nftables.Conn, t *nftables.Table) (bool, error) {
	rules, err := c.GetRules(t, baseChain(t))
	if err != nil {
		return false, fmt.Errorf("listing port rules of %s: %w", t.Name, err)
	}

	if len(rules) == 0 {
		return true, nil
	}

	if len(rules) == 1 && isVmapRule(rules[0], portMapName) {
		return false, nil
	}

	return false, migrateLayout(c, t, rules)
}

// migrateLayout converts an older berthd's table, whose base chains held one jump rule per
// port (the port's ACL key in the user data of its jump), to verdict maps, in one batch of
// its own: the containers it filters stay filtered throughout, each by the same chains.
func migrateLayout(c *nftables.Conn, t *nftables.Table, old []*nftables.Rule) error {
	t = c.AddTable(t)
	base := c.AddChain(baseChain(t))
	ports := verdictMap(t, portMapName)
	err := c.AddSet(ports, nil)
	if err != nil {
		return fmt.Errorf("adding the port map of %s: %w", t.Name, err)
	}

	var elems []nftables.SetElement
	for _, r := range old {
		if len(r.UserData) == 0 {
			continue
		}

		port := portName(r.UserData)
		ch := &nftables.Chain{Name: portChainPrefix + port, Table: t}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return fmt.Errorf("listing the rules of port %q: %w", port, err)
		}

		if len(rules) == 0 {
			continue
		}

		// The key moves to the user data of the port chain's first rule.
		first := rules[0]
		first.Table, first.Chain, first.UserData = t, ch, portUserData(port, portKey(r.UserData))
		c.ReplaceRule(first)
		elems = append(elems, jumpElem(port, ch.Name)...)
	}

	if len(elems) > 0 {
		err = c.SetAddElements(ports, elems)
		if err != nil {
			return fmt.Errorf("adding the ports of %s to its map: %w", t.Name, err)
		}
	}

	c.FlushChain(base)
	c.AddRule(&nftables.Rule{Table: t, Chain: base, Exprs: vmapRule(expr.MetaKeyIIFNAME, ports)})

	// The ACL base chains: the port of each jump (its user data) keeps its target.
	out, in := aclMaps(t)
	seen := map[string]bool{}
	for i, ch := range aclBase(t)[:3] {
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return fmt.Errorf("listing ACL jumps of %s: %w", t.Name, err)
		}

		m, key := out, expr.MetaKeyIIFNAME
		if i > 0 {
			m, key = in, expr.MetaKeyOIFNAME
		}

		if len(rules) == 0 || (len(rules) == 1 && isVmapRule(rules[0], m.Name)) {
			continue
		}

		err = c.AddSet(m, nil)
		if err != nil {
			return fmt.Errorf("adding ACL map %s of %s: %w", m.Name, t.Name, err)
		}

		var elems []nftables.SetElement
		for _, r := range rules {
			to := jumpTarget(r)
			if len(r.UserData) == 0 || to == "" || seen[m.Name+"/"+string(r.UserData)] {
				continue
			}

			seen[m.Name+"/"+string(r.UserData)] = true
			elems = append(elems, jumpElem(string(r.UserData), to)...)
		}

		c.FlushChain(ch)
		if len(elems) > 0 {
			err = c.SetAddElements(m, elems)
			if err != nil {
				return fmt.Errorf("adding ACL jumps of %s: %w", t.Name, err)
			}
		}

		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: vmapRule(key, m)})
	}

	err = c.Flush()
	if err != nil {
		return fmt.Errorf("converting the port rules of %s to maps: %w", t.Name, err)
	}

	return nil
}

// jumpTarget is the chain a rule jumps to ("" for none).
func jumpTarget(r *nftables.Rule) string {
	for _, e := range r.Exprs {
		if v, ok := e.(*expr.Verdict); ok && v.Kind == expr.VerdictJump {
			return v.Chain
		}
	}

	return ""
}
