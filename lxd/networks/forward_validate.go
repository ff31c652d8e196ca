package networks

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// Limits on forwards: each forwarded port is two nftables rules, and the rules of a
// network are rewritten whole on every change.
const (
	maxForwardsPerNetwork = 64
	maxForwardPortEntries = 64
	maxForwardPorts       = 1024 // ports of one forward, ranges expanded
	maxDescription        = 1024
)

// netAddrs is what a forward's targets must fall in: the network's subnet and prefix
// (nil without), and its own addresses, which are not targets.
type netAddrs struct {
	subnet, prefix6 *net.IPNet
	gw, gw6         net.IP
}

func addrsOf(config map[string]string) netAddrs {
	var a netAddrs
	a.gw, a.subnet, _ = network.ParseGateway(config["ipv4.address"])
	if v := config["ipv6.address"]; v != "" && v != "none" {
		a.gw6, a.prefix6, _ = network.ParseGateway6(v)
	}

	return a
}

func badRequest(format string, args ...any) error {
	return api.StatusErrorf(http.StatusBadRequest, format, args...)
}

// parseListen checks a listen address: an IP address, not loopback, link-local,
// multicast or unspecified (those cannot be forwarded), in canonical form.
func parseListen(s string) (net.IP, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, badRequest("listen_address %q is not an IP address", s)
	}

	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() || ip.IsInterfaceLocalMulticast() {
		return nil, badRequest("listen_address %s cannot be forwarded (loopback, link-local, multicast or unspecified)", ip)
	}

	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}

	return ip, nil
}

// parseTarget checks a target address: of the listen address's family, a host address of
// the network's subnet or prefix other than the network's own.
func parseTarget(s string, listen net.IP, a netAddrs) (net.IP, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, badRequest("target_address %q is not an IP address", s)
	}

	subnet, gw := a.subnet, a.gw
	if listen.To4() == nil {
		subnet, gw = a.prefix6, a.gw6
	} else {
		ip = ip.To4()
	}

	if ip == nil || subnet == nil || !subnet.Contains(ip) || ip.Equal(gw) || ip.Equal(subnet.IP) {
		return nil, badRequest("target_address %s is not an instance address of the network (%v) in the listen address's family", s, subnet)
	}

	return ip, nil
}

// parsePorts reads "80", "8000-8010" or a comma list of both, expanded in order, at most
// limit ports.
func parsePorts(s string, limit int) ([]uint16, error) {
	if s == "" {
		return nil, badRequest("empty port list")
	}

	out := []uint16{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := parsePort(lo)
		if err != nil {
			return nil, err
		}

		last := first
		if isRange {
			last, err = parsePort(hi)
			if err != nil {
				return nil, err
			}

			if last < first {
				return nil, badRequest("port range %q is backwards", part)
			}
		}

		if len(out)+int(last-first)+1 > limit {
			return nil, badRequest("port list %q has more than %d ports", s, limit)
		}

		for p := int(first); p <= int(last); p++ {
			out = append(out, uint16(p))
		}
	}

	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, badRequest("port %q is not a number from 1 to 65535", s)
	}

	return uint16(n), nil
}

// forwardRules validates a forward of listen on a network with addresses a, and returns
// its firewall rules: one per forwarded port, then the default target, if any.
func forwardRules(listen net.IP, put api.NetworkForwardPut, a netAddrs) ([]firewall.ForwardRule, error) {
	if len(put.Description) > maxDescription {
		return nil, badRequest("description is longer than %d bytes", maxDescription)
	}

	for k := range put.Config {
		if k != "target_address" && !strings.HasPrefix(k, "user.") {
			return nil, badRequest("unknown forward config key %q (target_address, user.*)", k)
		}
	}

	if len(put.Ports) > maxForwardPortEntries {
		return nil, badRequest("a forward has at most %d port entries", maxForwardPortEntries)
	}

	out := []firewall.ForwardRule{}
	seen := map[string]bool{} // "proto/port"
	for i, p := range put.Ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, badRequest("ports[%d]: protocol %q is not tcp or udp", i, p.Protocol)
		}

		if len(p.Description) > maxDescription {
			return nil, badRequest("ports[%d]: description is longer than %d bytes", i, maxDescription)
		}

		target, err := parseTarget(p.TargetAddress, listen, a)
		if err != nil {
			return nil, err
		}

		lports, err := parsePorts(p.ListenPort, maxForwardPorts-len(out))
		if err != nil {
			return nil, badRequest("ports[%d] listen_port: %v", i, err)
		}

		tports := lports
		if p.TargetPort != "" {
			tports, err = parsePorts(p.TargetPort, maxForwardPorts)
			if err != nil {
				return nil, badRequest("ports[%d] target_port: %v", i, err)
			}

			if len(tports) != 1 && len(tports) != len(lports) {
				return nil, badRequest("ports[%d]: %d target ports for %d listen ports (one, or as many)", i, len(tports), len(lports))
			}
		}

		for j, lp := range lports {
			key := p.Protocol + "/" + strconv.Itoa(int(lp))
			if seen[key] {
				return nil, badRequest("ports[%d]: %s is forwarded twice", i, key)
			}

			seen[key] = true
			tp := tports[0]
			if len(tports) > 1 {
				tp = tports[j]
			}

			out = append(out, firewall.ForwardRule{Listen: listen, Protocol: p.Protocol, ListenPort: lp, Target: target, TargetPort: tp})
		}
	}

	if v := put.Config["target_address"]; v != "" {
		target, err := parseTarget(v, listen, a)
		if err != nil {
			return nil, err
		}

		out = append(out, firewall.ForwardRule{Listen: listen, Target: target})
	}

	return out, nil
}
