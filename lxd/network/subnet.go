package network

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// DefaultPrefix is the size of the default network berthd creates on first start: a /22
// holds 1021 containers, twice the 500 a dense host runs, where LXD's /24 stops at 253.
// Wider would claim more of the host's private space than density needs (and collide
// more often with routes a VPN adds later); the full network's error says how to widen it.
const DefaultPrefix = 22

// AutoPrefix is the size of a network created with ipv4.address "auto", as LXD's.
const AutoPrefix = 24

// privateRanges are where subnets are picked (RFC 1918), in order of preference.
var privateRanges = []*net.IPNet{
	{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
	{IP: net.IPv4(172, 16, 0, 0).To4(), Mask: net.CIDRMask(12, 32)},
	{IP: net.IPv4(192, 168, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
}

// PickSubnet chooses a /ones subnet that overlaps none of the host's addresses and routes
// and none of taken (the other managed networks, up or not), and returns its first
// address as the gateway ("10.x.y.1/22").
func PickSubnet(taken []*net.IPNet, ones int) (string, error) {
	used, err := ip.HostNets()
	if err != nil {
		return "", err
	}

	n, err := pickSubnet(append(used, taken...), ones, rand.IntN)
	if err != nil {
		return "", err
	}

	gw := n.IP.To4()
	return fmt.Sprintf("%d.%d.%d.%d/%d", gw[0], gw[1], gw[2], gw[3]+1, ones), nil
}

// pickSubnet tries random /ones subnets of 10.0.0.0/8 first, as LXD does (two hosts that
// later share a route rarely chose the same), then every candidate of each private range
// in order, so that "no free subnet" means none.
func pickSubnet(used []*net.IPNet, ones int, randN func(int) int) (*net.IPNet, error) {
	if ones < 8 || ones > 30 {
		return nil, fmt.Errorf("prefix /%d is not between /8 and /30", ones)
	}

	for range 1000 {
		cand := nthSubnet(privateRanges[0], ones, randN(1<<(ones-8)))
		if !collides(cand, used) {
			return cand, nil
		}
	}

	for _, r := range privateRanges {
		rangeOnes, _ := r.Mask.Size()
		if ones < rangeOnes {
			continue
		}

		for i := range 1 << (ones - rangeOnes) {
			cand := nthSubnet(r, ones, i)
			if !collides(cand, used) {
				return cand, nil
			}
		}
	}

	return nil, fmt.Errorf("no free /%d subnet in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 on this host: set ipv4.address", ones)
}

// nthSubnet is the i-th /ones subnet of r.
func nthSubnet(r *net.IPNet, ones, i int) *net.IPNet {
	b := r.IP.To4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := base + uint32(i)<<(32-ones)
	return &net.IPNet{IP: net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)).To4(), Mask: net.CIDRMask(ones, 32)}
}

// CheckSubnet refuses a gateway whose subnet overlaps the host's other networks or taken:
// 400. bridge is the network's own bridge, whose addresses do not count.
func CheckSubnet(address, bridge string, taken []*net.IPNet) error {
	_, subnet, err := ParseGateway(address)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid ipv4.address: %v", err)
	}

	used, err := ip.HostNets(bridge)
	if err != nil {
		return err
	}

	return checkFree("ipv4.address", address, subnet, append(used, taken...))
}

// checkFree refuses (400) the network n of config key=address if it overlaps used.
func checkFree(key, address string, n *net.IPNet, used []*net.IPNet) error {
	for _, u := range used {
		if overlaps(n, u) {
			return api.StatusErrorf(http.StatusBadRequest, "%s %s overlaps %s already in use on this host", key, address, u)
		}
	}

	return nil
}

func collides(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if overlaps(n, u) {
			return true
		}
	}

	return false
}

// PickPrefix6 chooses a random unique local /64 (fdXX:XXXX:XXXX:XXXX::/64, RFC 4193, as
// LXD's "auto") that overlaps none of the host's IPv6 networks and none of taken, and
// returns the gateway in it: "<prefix>::1/64".
func PickPrefix6(taken []*net.IPNet) (string, error) {
	used, err := ip.HostNets6()
	if err != nil {
		return "", err
	}

	used = append(used, taken...)
	for range 100 {
		cand := &net.IPNet{IP: make(net.IP, net.IPv6len), Mask: net.CIDRMask(64, 128)}
		cand.IP[0] = 0xfd
		for i := 1; i < 8; i++ {
			cand.IP[i] = byte(rand.IntN(256))
		}

		if !collides(cand, used) {
			gw := make(net.IP, net.IPv6len)
			copy(gw, cand.IP)
			gw[15] = 1

			return (&net.IPNet{IP: gw, Mask: cand.Mask}).String(), nil
		}
	}

	return "", fmt.Errorf("no free unique local IPv6 /64 on this host")
}

// CheckPrefix6 refuses an ipv6.address whose prefix overlaps the host's other IPv6
// networks or taken: 400. bridge is the network's own bridge, whose addresses do not count.
func CheckPrefix6(address, bridge string, taken []*net.IPNet) error {
	_, prefix, err := ParseGateway6(address)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid ipv6.address: %v", err)
	}

	used, err := ip.HostNets6(bridge)
	if err != nil {
		return err
	}

	return checkFree("ipv6.address", address, prefix, append(used, taken...))
}
