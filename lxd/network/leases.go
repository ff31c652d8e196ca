package network

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Bounds on reading dnsmasq's lease file (it holds at most one line per address of the
// subnet, and dnsmasq writes every field itself; the caps keep a damaged file cheap).
const (
	maxLeaseFile  = 4 << 20
	maxLeaseLines = 1 << 16
)

// leaser is what a network driver reports of its leases.
type leaser interface {
	leases() ([]api.NetworkLease, error)
}

// Leases lists a network's leases as LXD does: each NIC's reservation ("static", with its
// SLAAC address as "dynamic" when the network has IPv6), then what dnsmasq handed out to
// others ("dynamic": leases of deleted instances until they expire).
func (m *Manager) Leases(name string) ([]api.NetworkLease, error) {
	n, err := m.Get(name)
	if err != nil {
		return nil, err
	}

	l, ok := n.(leaser)
	if !ok {
		return []api.NetworkLease{}, nil
	}

	return l.leases()
}

func (b *bridge) leases() ([]api.NetworkLease, error) {
	b.mu.Lock()
	res := make([]reservation, 0, len(b.res))
	owners := make([]string, 0, len(b.res))
	for o := range b.res {
		owners = append(owners, o)
	}

	sort.Strings(owners)
	for _, o := range owners {
		res = append(res, b.res[o])
	}

	prefix6 := b.prefix6
	b.mu.Unlock()

	out := []api.NetworkLease{}
	seen := map[string]bool{} // "mac ip" of the static entries
	for _, r := range res {
		mac := strings.ToLower(r.MAC)
		out = append(out, api.NetworkLease{Hostname: r.Host, Hwaddr: mac, Address: r.IP, Type: "static", Location: "none"})
		seen[mac+" "+r.IP] = true
		hw, err := net.ParseMAC(mac)
		if prefix6 != nil && err == nil && len(hw) == 6 {
			out = append(out, api.NetworkLease{Hostname: r.Host, Hwaddr: mac, Address: eui64(prefix6, hw).String(), Type: "dynamic", Location: "none"})
		}
	}

	dyn, err := readLeaseFile(filepath.Join(b.dir, "dnsmasq.leases"))
	if err != nil {
		return nil, err
	}

	for _, l := range dyn {
		if !seen[l.Hwaddr+" "+l.Address] {
			out = append(out, l)
		}
	}

	return out, nil
}

// readLeaseFile parses dnsmasq's lease file ("expiry MAC address hostname client-id" per
// line; "*" for an unknown hostname); a missing file has no leases.
func readLeaseFile(path string) ([]api.NetworkLease, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("reading leases: %w", err)
	}

	defer f.Close()
	return parseLeases(io.LimitReader(f, maxLeaseFile)), nil
}

func parseLeases(r io.Reader) []api.NetworkLease {
	out := []api.NetworkLease{}
	s := bufio.NewScanner(r)
	for n := 0; s.Scan() && n < maxLeaseLines; n++ {
		fields := strings.Fields(s.Text())
		if len(fields) < 4 {
			continue // "duid ..." lines of DHCPv6 and anything damaged
		}

		addr := net.ParseIP(fields[2])
		hw, err := net.ParseMAC(fields[1])
		if addr == nil || err != nil {
			continue
		}

		host := fields[3]
		if host == "*" || !safeHost(host) {
			host = ""
		}

		out = append(out, api.NetworkLease{Hostname: host, Hwaddr: hw.String(), Address: addr.String(), Type: "dynamic", Location: "none"})
	}

	return out
}
