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

	for _, n := range append(used, taken...) {
		if overlaps(subnet, n) {
			return api.StatusErrorf(http.StatusBadRequest, "ipv4.address %s overlaps %s already in use on this host", address, n)
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
