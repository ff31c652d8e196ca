package network

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

// TestPickSubnet: a subnet of the asked size, aligned, in private space, clear of what the
// host uses; the next candidate when the random one collides; every range when 10/8 is
// full; and an error naming the fix when nothing is free.
func TestPickSubnet(t *testing.T) {
	always := func(v int) func(int) int { return func(int) int { return v } }

	got, err := pickSubnet(nil, 22, always(5))
	if err != nil || got.String() != "10.0.20.0/22" {
		t.Fatalf("pickSubnet = %v, %v; want 10.0.20.0/22", got, err)
	}

	// The random candidate collides with a host route: another one is tried.
	calls := 0
	next := func(n int) int { calls++; return calls } // 1, 2, ...
	used := []*net.IPNet{cidr(t, "10.0.4.0/24"), cidr(t, "10.0.8.0/21")}
	got, err = pickSubnet(used, 22, next)
	if err != nil || got.String() != "10.0.16.0/22" || calls != 4 {
		t.Fatalf("pickSubnet around %v = %v, %v after %d tries; want 10.0.16.0/22 after 4", used, got, err, calls)
	}

	// 10/8 taken (a VPN's route): the first free subnet of 172.16/12.
	used = []*net.IPNet{cidr(t, "10.0.0.0/8"), cidr(t, "172.16.0.0/22")}
	got, err = pickSubnet(used, 22, always(0))
	if err != nil || got.String() != "172.16.4.0/22" {
		t.Fatalf("pickSubnet with 10/8 used = %v, %v; want 172.16.4.0/22", got, err)
	}

	// A wider subnet than a range holds skips that range.
	used = []*net.IPNet{cidr(t, "10.0.0.0/8")}
	got, err = pickSubnet(used, 14, always(0))
	if err != nil || got.String() != "172.16.0.0/14" {
		t.Fatalf("pickSubnet /14 = %v, %v", got, err)
	}

	used = []*net.IPNet{cidr(t, "10.0.0.0/8"), cidr(t, "172.16.0.0/12"), cidr(t, "192.168.0.0/16")}
	_, err = pickSubnet(used, 22, always(0))
	if err == nil || !strings.Contains(err.Error(), "no free /22 subnet") || !strings.Contains(err.Error(), "set ipv4.address") {
		t.Fatalf("everything used: %v", err)
	}

	for _, bad := range []int{7, 31} {
		_, err = pickSubnet(nil, bad, always(0))
		if err == nil {
			t.Errorf("prefix /%d accepted", bad)
		}
	}
}

// TestPickSubnetHost picks against this host's real routes and addresses: the gateway is
// the subnet's first address, and the subnet overlaps nothing the host has.
func TestPickSubnetHost(t *testing.T) {
	gwCIDR, err := PickSubnet(nil, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}

	gw, subnet, err := ParseGateway(gwCIDR)
	if err != nil {
		t.Fatal(err)
	}

	ones, _ := subnet.Mask.Size()
	first := net.IPv4(subnet.IP[0], subnet.IP[1], subnet.IP[2], subnet.IP[3]+1)
	if ones != DefaultPrefix || !gw.Equal(first) || !privateRanges[0].Contains(gw) {
		t.Fatalf("picked %s (subnet %s)", gwCIDR, subnet)
	}

	used, _ := ip.HostNets()
	if collides(subnet, used) {
		t.Fatalf("picked %s, which the host uses: %v", subnet, used)
	}
}

func TestFullError(t *testing.T) {
	for _, c := range []struct{ gw, subnet, want string }{
		{"10.53.90.1", "10.53.90.0/24", "network berthbr0 has no free IPv4 address: widen ipv4.address (e.g. berth network set berthbr0 ipv4.address=10.53.90.1/22) or use another network"},
		{"10.20.0.1", "10.20.0.0/22", "network berthbr0 has no free IPv4 address: widen ipv4.address (e.g. berth network set berthbr0 ipv4.address=10.20.0.1/20) or use another network"},
		{"10.1.2.3", "10.0.0.0/8", "network berthbr0 has no free IPv4 address: widen ipv4.address or use another network"},
	} {
		gw := net.ParseIP(c.gw).To4()
		err := fullError("berthbr0", gw, cidr(t, c.subnet))
		if !api.StatusErrorCheck(err, http.StatusServiceUnavailable) || err.Error() != c.want || strings.Contains(err.Error(), "\n") {
			t.Errorf("fullError(%s) = %v\nwant %s", c.subnet, err, c.want)
		}
	}
}

// TestDnsmasqRangeFollowsPrefix: dnsmasq hands out the whole subnet of the network's
// prefix, and free addresses are found past the first /24 of a /22.
func TestDnsmasqRangeFollowsPrefix(t *testing.T) {
	b, err := newBridge(t.TempDir(), "bttest0", map[string]string{"ipv4.address": "10.20.4.1/22"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}

	conf := string(b.dnsmasqConf())
	if !strings.Contains(conf, "\ndhcp-range=10.20.4.0,static,255.255.252.0,1h\n") || !strings.Contains(conf, "domain=berth,10.20.4.0/22\n") {
		t.Fatalf("dnsmasq.conf:\n%s", conf)
	}

	taken := map[string]string{}
	for i := 2; i < 256; i++ {
		taken[fmt.Sprintf("10.20.4.%d", i)] = "x"
	}

	taken["10.20.5.0"] = "x"
	mac, _ := net.ParseMAC("00:16:3e:00:00:01")
	addr, err := b.freeAddress(taken, mac)
	if err != nil || addr.String() != "10.20.5.1" {
		t.Fatalf("freeAddress = %v, %v; want 10.20.5.1", addr, err)
	}
}

// TestFullNetwork fills a real /30 network (one container address) and checks the next
// reservation's error: one line naming the network and the fix.
func TestFullNetwork(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o711)
	_ = os.Chmod(filepath.Dir(dir), 0o711)
	name := fmt.Sprintf("btf%d", os.Getpid()%100000)
	m := NewManager(dir, quietLog())
	addr, err := PickSubnet(m.Subnets(name), 30)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := m.FillDefaults(name, map[string]string{"ipv4.address": addr, "ipv6.address": "none"})
	if err != nil {
		t.Fatal(err)
	}

	n, err := m.Create(name, "bridge", cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = n.Delete()
		_ = ip.LinkDel(name)
		_ = firewall.Remove(name)
		m.Close()
	})

	mac1, _ := net.ParseMAC("00:16:3e:00:00:01")
	mac2, _ := net.ParseMAC("00:16:3e:00:00:02")
	_, err = n.Reserve("c1.eth0", "c1", mac1, nil)
	if err != nil {
		t.Fatal(err)
	}

	_, err = n.Reserve("c2.eth0", "c2", mac2, nil)
	want := fmt.Sprintf("network %s has no free IPv4 address: widen ipv4.address (e.g. berth network set %s ipv4.address=%s/28) or use another network", name, name, n.Gateway())
	if !api.StatusErrorCheck(err, http.StatusServiceUnavailable) || err.Error() != want {
		t.Fatalf("full network: %v\nwant %s", err, want)
	}
}
