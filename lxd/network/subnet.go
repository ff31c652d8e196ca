package network

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// PickSubnet chooses a random 10.x.y.1/24 that overlaps none of the host's addresses and
// routes and none of taken (the other managed networks, up or not), like LXD.
func PickSubnet(taken []*net.IPNet) (string, error) {
	used, err := ip.HostNets()
	if err != nil {
		return "", err
	}

	used = append(used, taken...)
	for range 1000 {
		cand := &net.IPNet{IP: net.IPv4(10, byte(rand.IntN(256)), byte(rand.IntN(256)), 0).To4(), Mask: net.CIDRMask(24, 32)}
		if !collides(cand, used) {
			return fmt.Sprintf("%d.%d.%d.1/24", cand.IP[0], cand.IP[1], cand.IP[2]), nil
		}
	}

	return "", fmt.Errorf("no free 10.x.y.0/24 subnet on this host")
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
