package networks

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
	"golang.org/x/sys/unix"
)

// Limits on ACLs: every rule is expanded into nftables rules (sources × destinations ×
// ports), and a network's rules are rewritten whole on every change.
const (
	maxACLRules     = 256  // per direction of one ACL
	maxACLListItems = 64   // entries of one source, destination or port list
	maxCompiled     = 4096 // nftables rules of one network's ACLs
)

// validateACL checks an ACL's rules and config; known says which ACL names exist (for
// references in sources and destinations).
func validateACL(put api.NetworkACLPut, known func(string) bool) error {
	if len(put.Description) > maxDescription {
		return badRequest("description is longer than %d bytes", maxDescription)
	}

	for k := range put.Config {
		if !strings.HasPrefix(k, "user.") || len(k) == len("user.") {
			return badRequest("unknown ACL config key %q (user.* only)", k)
		}
	}

	for dir, rules := range map[string][]api.NetworkACLRule{"ingress": put.Ingress, "egress": put.Egress} {
		if len(rules) > maxACLRules {
			return badRequest("%s: more than %d rules", dir, maxACLRules)
		}

		for i, r := range rules {
			_, err := compileRule(r, func(name string) ([]firewall.ACLAddr, error) {
				if !known(name) {
					return nil, badRequest("no network ACL %q", name)
				}

				return nil, nil
			})
			if err != nil {
				return badRequest("%s rule %d: %v", dir, i, err)
			}
		}
	}

	return nil
}

// compileRule expands one rule into firewall rules; resolve gives the addresses of the
// instances an ACL name stands for. A disabled rule compiles to nothing.
func compileRule(r api.NetworkACLRule, resolve func(string) ([]firewall.ACLAddr, error)) ([]firewall.ACLRule, error) {
	if len(r.Description) > maxDescription {
		return nil, fmt.Errorf("description is longer than %d bytes", maxDescription)
	}

	base := firewall.ACLRule{ICMPType: -1, ICMPCode: -1}
	switch r.Action {
	case "allow":
	case "drop":
		base.Drop = true
	case "reject": // drops where the kernel cannot reject (firewall/acl_state.go)
		base.Drop, base.Reject = true, true
	default:
		return nil, fmt.Errorf("action %q is not allow, reject or drop", r.Action)
	}

	switch r.State {
	case "", "enabled", "logged":
	case "disabled":
	default:
		return nil, fmt.Errorf("state %q is not enabled, disabled or logged", r.State)
	}

	switch r.Protocol {
	case "":
	case "tcp":
		base.Protocol = unix.IPPROTO_TCP
	case "udp":
		base.Protocol = unix.IPPROTO_UDP
	case "icmp4":
		base.Protocol, base.Family = unix.IPPROTO_ICMP, unix.NFPROTO_IPV4
	case "icmp6":
		base.Protocol, base.Family = unix.IPPROTO_ICMPV6, unix.NFPROTO_IPV6
	default:
		return nil, fmt.Errorf("protocol %q is not tcp, udp, icmp4 or icmp6", r.Protocol)
	}

	ports := base.Protocol == unix.IPPROTO_TCP || base.Protocol == unix.IPPROTO_UDP
	icmp := base.Protocol == unix.IPPROTO_ICMP || base.Protocol == unix.IPPROTO_ICMPV6
	if !ports && (r.SourcePort != "" || r.DestinationPort != "") {
		return nil, fmt.Errorf("ports need protocol tcp or udp")
	}

	if !icmp && (r.ICMPType != "" || r.ICMPCode != "") {
		return nil, fmt.Errorf("icmp_type and icmp_code need protocol icmp4 or icmp6")
	}

	var err error
	base.ICMPType, err = parseByte(r.ICMPType, "icmp_type")
	if err != nil {
		return nil, err
	}

	base.ICMPCode, err = parseByte(r.ICMPCode, "icmp_code")
	if err != nil {
		return nil, err
	}

	srcs, err := parseAddrList(r.Source, resolve)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}

	dsts, err := parseAddrList(r.Destination, resolve)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}

	sports, err := parsePortRanges(r.SourcePort)
	if err != nil {
		return nil, fmt.Errorf("source_port: %w", err)
	}

	dports, err := parsePortRanges(r.DestinationPort)
	if err != nil {
		return nil, fmt.Errorf("destination_port: %w", err)
	}

	if r.State == "disabled" {
		return nil, nil
	}

	out := []firewall.ACLRule{}
	for _, s := range srcs {
		for _, d := range dsts {
			fam, ok := family(base.Family, s, d)
			if !ok {
				continue // an IPv4 source with an IPv6 destination matches nothing
			}

			for _, sp := range sports {
				for _, dp := range dports {
					x := base
					x.Family, x.Source, x.Dest, x.SrcPorts, x.DstPorts = fam, s, d, sp, dp
					out = append(out, x)
					if len(out) > maxCompiled {
						return nil, fmt.Errorf("expands to more than %d rules", maxCompiled)
					}
				}
			}
		}
	}

	return out, nil
}

// family is the family a rule with these addresses matches; false when they disagree.
func family(fam byte, addrs ...*firewall.ACLAddr) (byte, bool) {
	for _, a := range addrs {
		if a == nil {
			continue
		}

		f := byte(unix.NFPROTO_IPV6)
		if a.From.To4() != nil {
			f = unix.NFPROTO_IPV4
		}

		if fam != 0 && fam != f {
			return 0, false
		}

		fam = f
	}

	return fam, true
}

func parseByte(s, what string) (int, error) {
	if s == "" {
		return -1, nil
	}

	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not 0 to 255", what, s)
	}

	return int(n), nil
}

// parseAddrList reads a comma list of addresses, CIDRs, ranges (a-b) and ACL names; empty
// is "any" (one nil entry).
func parseAddrList(s string, resolve func(string) ([]firewall.ACLAddr, error)) ([]*firewall.ACLAddr, error) {
	if s == "" {
		return []*firewall.ACLAddr{nil}, nil
	}

	items := strings.Split(s, ",")
	if len(items) > maxACLListItems {
		return nil, fmt.Errorf("more than %d entries", maxACLListItems)
	}

	out := []*firewall.ACLAddr{}
	for _, it := range items {
		it = strings.TrimSpace(it)
		a, err := parseAddr(it)
		if err == nil {
			out = append(out, a)
			continue
		}

		// An ACL name has a letter (an address or range that does not parse is one's error).
		if network.ValidACLName(it) != nil || !strings.ContainsAny(strings.ToLower(it), "abcdefghijklmnopqrstuvwxyz") || strings.ContainsAny(it, ":/") {
			return nil, err
		}

		refs, rerr := resolve(it)
		if rerr != nil {
			return nil, rerr
		}

		for i := range refs {
			out = append(out, &refs[i])
		}
	}

	if len(out) == 0 {
		// Only ACL names whose instances have no address yet: the rule matches nothing.
		return []*firewall.ACLAddr{}, nil
	}

	return out, nil
}

// parseAddr reads an address, a CIDR or a range "a-b" of one family.
func parseAddr(s string) (*firewall.ACLAddr, error) {
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, b := net.ParseIP(from), net.ParseIP(to)
		if a == nil || b == nil || (a.To4() == nil) != (b.To4() == nil) {
			return nil, fmt.Errorf("%q is not an address range of one family", s)
		}

		a, b = norm(a), norm(b)
		if bytes.Compare(a, b) > 0 {
			return nil, fmt.Errorf("address range %q is backwards", s)
		}

		return &firewall.ACLAddr{From: a, To: b}, nil
	}

	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", s)
		}

		from := norm(n.IP)
		to := make(net.IP, len(from))
		for i := range from {
			to[i] = from[i] | ^n.Mask[len(n.Mask)-len(from)+i]
		}

		return &firewall.ACLAddr{From: from, To: to}, nil
	}

	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is not an address, CIDR, range or ACL name", s)
	}

	return &firewall.ACLAddr{From: norm(ip), To: norm(ip)}, nil
}

func norm(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}

	return ip.To16()
}

// parsePortRanges reads a comma list of ports and ranges; empty is "any" ([0,0]).
func parsePortRanges(s string) ([][2]uint16, error) {
	if s == "" {
		return [][2]uint16{{}}, nil
	}

	items := strings.Split(s, ",")
	if len(items) > maxACLListItems {
		return nil, fmt.Errorf("more than %d entries", maxACLListItems)
	}

	out := [][2]uint16{}
	for _, it := range items {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(it), "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}

		b := a
		if isRange {
			b, err = parsePort(hi)
			if err != nil {
				return nil, err
			}

			if b < a {
				return nil, fmt.Errorf("port range %q is backwards", it)
			}
		}

		out = append(out, [2]uint16{a, b})
	}

	return out, nil
}

func splitComma(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}

	return parts
}
