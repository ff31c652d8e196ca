package network

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// DefaultDomain is the DNS domain of a network without dns.domain.
const DefaultDomain = "berth"

// keyValidators lists the bridge config keys. Values reach dnsmasq's configuration file, so
// every one is checked for shape, on top of the line-break check common to all.
var keyValidators = map[string]func(string) error{
	"ipv4.address": isIPv4Gateway,
	"ipv4.nat":     isBool,
	"ipv6.address": isIPv6Gateway,
	"ipv6.nat":     isBool,
	"dns.domain":   isDomain,
	"bridge.mtu":   isMTU,

	// Network ACLs (lxd/networks checks that the named ACLs exist).
	"security.acls":                        isACLList,
	"security.acls.default.ingress.action": isACLAction,
	"security.acls.default.egress.action":  isACLAction,
}

// ValidateName checks a network name: it is also the host bridge's name, so it must be a
// valid interface name (at most 15 bytes of letters, digits, '-', '_' and '.').
func ValidateName(name string) error {
	if name == "" || len(name) > 15 {
		return api.StatusErrorf(http.StatusBadRequest, "invalid network name %q: 1 to 15 characters", name)
	}

	if name == "." || name == ".." || name == "all" || name == "default" {
		return api.StatusErrorf(http.StatusBadRequest, "invalid network name %q", name)
	}

	for _, c := range name {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
		if !ok {
			return api.StatusErrorf(http.StatusBadRequest, "invalid network name %q: only letters, digits, '-', '_' and '.'", name)
		}
	}

	return nil
}

// ValidateConfig checks every key and value of a bridge network's config: 400 on the first
// bad one.
func ValidateConfig(config map[string]string) error {
	for k, v := range config {
		if strings.ContainsAny(k+v, "\n\r\x00") {
			return api.StatusErrorf(http.StatusBadRequest, "invalid network config %q: contains a line break or NUL", k)
		}

		if strings.HasPrefix(k, "user.") && len(k) > len("user.") {
			continue
		}

		f, ok := keyValidators[k]
		if !ok {
			return api.StatusErrorf(http.StatusBadRequest, "invalid network config %q: unknown key", k)
		}

		if v == "" {
			continue
		}

		err := f(v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "invalid network config %q: %v", k, err)
		}
	}

	return nil
}

// isIPv4Gateway accepts "auto" or the bridge's address in CIDR form, e.g. 10.0.3.1/24.
func isIPv4Gateway(v string) error {
	if v == "auto" {
		return nil
	}

	_, _, err := ParseGateway(v)
	return err
}

// ParseGateway reads an ipv4.address value: the gateway and its subnet.
func ParseGateway(v string) (net.IP, *net.IPNet, error) {
	ip, subnet, err := net.ParseCIDR(v)
	if err != nil || ip.To4() == nil {
		return nil, nil, fmt.Errorf("%q is not an IPv4 address in CIDR form (like 10.0.3.1/24)", v)
	}

	ones, _ := subnet.Mask.Size()
	if ones < 8 || ones > 30 {
		return nil, nil, fmt.Errorf("prefix /%d of %q is not between /8 and /30", ones, v)
	}

	if ip.Equal(subnet.IP) || ip.Equal(broadcast(subnet)) {
		return nil, nil, fmt.Errorf("%q is the subnet's network or broadcast address", v)
	}

	return ip.To4(), subnet, nil
}

// isIPv6Gateway accepts "none", "auto" or the bridge's address in a /64 (the prefix
// containers configure themselves from), e.g. fd42:1:2:3::1/64.
func isIPv6Gateway(v string) error {
	if v == "none" || v == "auto" {
		return nil
	}

	_, _, err := ParseGateway6(v)
	return err
}

// ParseGateway6 reads an ipv6.address value other than "none": the gateway and its /64.
func ParseGateway6(v string) (net.IP, *net.IPNet, error) {
	ip, prefix, err := net.ParseCIDR(v)
	if err != nil || ip.To4() != nil {
		return nil, nil, fmt.Errorf("%q is not an IPv6 address in CIDR form (like fd42:1:2:3::1/64)", v)
	}

	ones, _ := prefix.Mask.Size()
	if ones != 64 {
		return nil, nil, fmt.Errorf("prefix /%d of %q is not /64, the one containers configure themselves in (SLAAC)", ones, v)
	}

	if !ip.IsGlobalUnicast() || ip.Equal(prefix.IP) {
		return nil, nil, fmt.Errorf("%q is not a unicast host address of its prefix", v)
	}

	return ip, prefix, nil
}

// eui64 is the address a NIC with mac configures in prefix (SLAAC, RFC 4291 appendix A):
// systemd-networkd's default, and what the port filter lets the NIC send from.
func eui64(prefix *net.IPNet, mac net.HardwareAddr) net.IP {
	out := make(net.IP, net.IPv6len)
	copy(out, prefix.IP.To16()[:8])
	out[8], out[9], out[10] = mac[0]^0x02, mac[1], mac[2]
	out[11], out[12] = 0xff, 0xfe
	out[13], out[14], out[15] = mac[3], mac[4], mac[5]

	return out
}

func isBool(v string) error {
	switch strings.ToLower(v) {
	case "true", "false", "1", "0", "yes", "no", "on", "off":
		return nil
	}

	return fmt.Errorf("%q is not a boolean", v)
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}

	return false
}

func isMTU(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1280 || n > 9000 {
		return fmt.Errorf("%q is not an MTU between 1280 and 9000", v)
	}

	return nil
}

// isDomain accepts a DNS name of letters, digits and '-' labels.
func isDomain(v string) error {
	if len(v) > 253 {
		return fmt.Errorf("domain is too long")
	}

	for _, label := range strings.Split(v, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%q is not a DNS domain", v)
		}

		for _, c := range label {
			ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
			if !ok {
				return fmt.Errorf("%q is not a DNS domain", v)
			}
		}
	}

	return nil
}

func broadcast(n *net.IPNet) net.IP {
	ip := n.IP.To4()
	out := make(net.IP, 4)
	for i := range out {
		out[i] = ip[i] | ^n.Mask[i]
	}

	return out
}

// overlaps reports whether two networks share an address.
func overlaps(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}
