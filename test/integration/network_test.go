package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// startNetDaemon is startDaemon plus removal of the daemon's bridges once its directory is
// gone: the harness deletes containers and the directory, not networks (they outlive
// berthd on purpose).
func startNetDaemon(t *testing.T) *daemon {
	t.Helper()
	t.Cleanup(func() { network.RemoveOrphans(slog.New(slog.NewTextHandler(io.Discard, nil))) })
	return startDaemon(t)
}

// defaultNetwork is the network of the default profile's eth0 (berthbr0, or berthbrN when
// other daemons run on this host).
func (d *daemon) defaultNetwork() *api.Network {
	d.t.Helper()
	p, _, err := d.c.GetProfile(context.Background(), "default")
	if err != nil {
		d.t.Fatal(err)
	}

	name := p.Devices["eth0"]["network"]
	if name == "" || p.Devices["eth0"]["type"] != "nic" {
		d.t.Fatalf("default profile has no eth0 NIC: %v", p.Devices)
	}

	n, _, err := d.c.GetNetwork(context.Background(), name)
	if err != nil {
		d.t.Fatal(err)
	}

	return n
}

// ipv4Of returns the global IPv4 address of eth0 reported by the instance state, "" if none.
func (d *daemon) ipv4Of(name string) string { return d.addrOf(name, "inet") }

// addrOf returns eth0's global address of family ("inet" or "inet6") in the instance state.
func (d *daemon) addrOf(name, family string) string {
	st, err := d.c.GetInstanceState(context.Background(), name)
	if err != nil {
		d.t.Fatal(err)
	}

	for _, a := range st.Network["eth0"].Addresses {
		if a.Family == family && a.Scope == "global" {
			return a.Address
		}
	}

	return ""
}

func (d *daemon) waitIPv4(name string, timeout time.Duration) string {
	d.t.Helper()
	return d.waitAddr(name, "inet", timeout)
}

// waitIPv6 waits for eth0's global IPv6 address (SLAAC, after a router advertisement),
// and until it is no longer tentative (Berth turns duplicate address detection off; a
// container may turn it on).
func (d *daemon) waitIPv6(name string) string {
	d.t.Helper()
	addr := d.waitAddr(name, "inet6", 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for d.mustInside(name, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "tentative") != "" {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s's IPv6 address stays tentative", name)
		}

		time.Sleep(50 * time.Millisecond)
	}

	return addr
}

func (d *daemon) waitAddr(name, family string, timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		addr := d.addrOf(name, family)
		if addr != "" {
			return addr
		}

		if time.Now().After(deadline) {
			out, _ := d.inside(name, "networkctl", "status", "eth0")
			d.t.Fatalf("%s has no %s address after %s:\n%s", name, family, timeout, out)
		}

		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) mustInside(name string, args ...string) string {
	d.t.Helper()
	out, err := d.inside(name, args...)
	if err != nil {
		d.t.Fatalf("in %s: %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}

	return out
}

func dnsmasqPID(t *testing.T, d *daemon, nw string) int {
	t.Helper()
	return readPID(t, filepath.Join(d.dir, "networks", nw, "dnsmasq.pid"))
}

func resolveAt(server, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "udp", net.JoinHostPort(server, "53"))
	}}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

// TestNetworkBridge: two containers on the default bridge get distinct addresses by the
// time systemd is up, reach each other by address and name, are listed with their
// addresses, cannot spoof, keep everything across a daemon restart; then the network API.
func TestNetworkBridge(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	nw := d.defaultNetwork()
	gw, subnet, err := net.ParseCIDR(nw.Config["ipv4.address"])
	if err != nil || !nw.Managed || nw.Type != "bridge" {
		t.Fatalf("default network %+v", nw)
	}

	if !ip.LinkExists(nw.Name) {
		t.Fatalf("bridge %s missing", nw.Name)
	}

	d.berth("launch", "debian/12", "n1")
	d.berth("launch", "debian/12", "n2")
	addrs := map[string]string{}
	for _, c := range []string{"n1", "n2"} {
		if st := d.waitRunning(c); st != "running" {
			t.Fatalf("%s: systemd says %q", c, st)
		}

		// The address is held by the time systemd reports running (a short grace for the
		// state read racing the lease).
		addrs[c] = d.waitIPv4(c, 3*time.Second)
		if !subnet.Contains(net.ParseIP(addrs[c])) {
			t.Fatalf("%s got %s outside %s", c, addrs[c], subnet)
		}
	}

	if addrs["n1"] == addrs["n2"] {
		t.Fatalf("both containers got %s", addrs["n1"])
	}

	// IPv6: each configures its SLAAC address in the network's /64 (router advertisements
	// from dnsmasq); names resolve to it, and it is the only global one the port passes.
	gw6, prefix6, err := net.ParseCIDR(nw.Config["ipv6.address"])
	if err != nil {
		t.Fatalf("default network without IPv6: %v", nw.Config)
	}

	addrs6 := map[string]string{}
	for _, c := range []string{"n1", "n2"} {
		addrs6[c] = d.waitIPv6(c)
		if !prefix6.Contains(net.ParseIP(addrs6[c])) {
			t.Fatalf("%s got IPv6 %s outside %s", c, addrs6[c], prefix6)
		}
	}

	// The port filter keeps addresses to their owners: no duplicate address detection,
	// which would hold each address back by seconds.
	if dad := strings.TrimSpace(d.mustInside("n1", "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad")); dad != "0" {
		t.Fatalf("n1's eth0 has accept_dad %s, want 0", dad)
	}

	d.mustInside("n1", "ping", "-6", "-c1", "-W2", "n2.berth")
	d.mustInside("n2", "ping", "-6", "-c1", "-W2", gw6.String())
	inPrefix := net.ParseIP(addrs6["n1"])
	inPrefix[15] ^= 0xff
	testIPv6Spoofing(t, d, nw.Name, gw6.String(), inPrefix.String(), addrs6["n2"])

	st, _ := d.c.GetInstanceState(context.Background(), "n1")
	eth0 := st.Network["eth0"]
	inst, _, _ := d.c.GetInstance(context.Background(), "n1")
	if eth0.HostName == "" || eth0.HostName != inst.Config["volatile.eth0.host_name"] ||
		eth0.Hwaddr != inst.Config["volatile.eth0.hwaddr"] || !strings.HasPrefix(eth0.Hwaddr, "00:16:3e:") || eth0.Mtu == 0 {
		t.Fatalf("eth0 state %+v vs config %v", eth0, inst.Config)
	}

	// By address, by NAME.berth and by the short name (search domain).
	for _, target := range []string{addrs["n2"], "n2.berth", "n2"} {
		d.mustInside("n1", "ping", "-c1", "-W2", target)
	}

	d.mustInside("n2", "ping", "-c1", "-W2", "n1.berth")

	// The host resolves through the bridge's DNS.
	got, err := resolveAt(gw.String(), "n2.berth")
	if err != nil || !slices.Contains(got, addrs["n2"]) {
		t.Fatalf("host resolving n2.berth at %s: %v %v", gw, got, err)
	}

	out := d.berth("list")
	for c, a := range addrs {
		if !strings.Contains(out, a+" (eth0)") || !strings.Contains(out, addrs6[c]+" (eth0)") {
			t.Fatalf("berth list lacks %s or %s of %s:\n%s", a, addrs6[c], c, out)
		}
	}

	testLXCListShowsAddresses(t, d, addrs)
	testAntiSpoofing(t, d, addrs)
	testNoRogueServices(t, d, nw.Name, gw, addrs)

	// Restart: same bridge, same dnsmasq (leases in memory kept), same veths, still talking.
	// n1's port loses its rules (as if an older berthd had written fewer): the new daemon
	// writes them again.
	portRules(t, nw.Name, eth0.HostName, true)

	dns := dnsmasqPID(t, d, nw.Name)
	leases, _ := os.ReadFile(filepath.Join(d.dir, "networks", nw.Name, "dnsmasq.leases"))
	d.kill(syscall.SIGTERM)
	d.start()
	deadline := time.Now().Add(10 * time.Second)
	for portRules(t, nw.Name, eth0.HostName, false) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("n1's port %s has no rules after the restart", eth0.HostName)
		}

		time.Sleep(50 * time.Millisecond)
	}
	if p := dnsmasqPID(t, d, nw.Name); p != dns || !alive(dns, 0) {
		t.Fatalf("dnsmasq %d replaced by %d across the restart", dns, p)
	}

	st2, _ := d.c.GetInstanceState(context.Background(), "n1")
	if st2.Network["eth0"].HostName != eth0.HostName || d.ipv4Of("n1") != addrs["n1"] {
		t.Fatalf("n1's NIC changed across the restart: %+v", st2.Network["eth0"])
	}

	leases2, _ := os.ReadFile(filepath.Join(d.dir, "networks", nw.Name, "dnsmasq.leases"))
	for _, a := range addrs {
		if !bytes.Contains(leases, []byte(a)) || !bytes.Contains(leases2, []byte(a)) {
			t.Fatalf("lease of %s missing:\nbefore:\n%s\nafter:\n%s", a, leases, leases2)
		}
	}

	d.mustInside("n1", "ping", "-c1", "-W2", "n2.berth")

	// A reboot inside gives n2 a new init and network namespace: the NIC follows (the
	// follower was started by the restarted daemon), same MAC, same address.
	oldInit := d.initPID("n2")
	_, _ = d.inside("n2", "systemctl", "reboot")
	deadline = time.Now().Add(30 * time.Second)
	for d.initPID("n2") == oldInit {
		if time.Now().After(deadline) {
			t.Fatal("n2 did not reboot")
		}

		time.Sleep(50 * time.Millisecond)
	}

	if st := d.waitRunning("n2"); st != "running" {
		t.Fatalf("n2 after reboot: %q", st)
	}

	if a, a6 := d.waitIPv4("n2", 5*time.Second), d.waitIPv6("n2"); a != addrs["n2"] || a6 != addrs6["n2"] {
		t.Fatalf("n2 came back with %s and %s, had %s and %s", a, a6, addrs["n2"], addrs6["n2"])
	}

	if out, err := d.inside("n1", "ping", "-c1", "-W2", "n2.berth"); err != nil {
		dbg, _ := exec.Command("sh", "-c", "tail -20 "+d.dir+"/networks/*/dnsmasq.log; nft list table bridge berth-"+nw.Name+"; ip -br link; cat "+d.dir+"/networks/*/dnsmasq.hosts").CombinedOutput()
		in1, _ := d.inside("n1", "sh", "-c", "getent hosts n1.berth; echo rc=$?; getent hosts n2.berth; echo rc=$?; ping -c1 -W1 "+gw.String()+"; ss -uanp | head")
		hostRes, herr := resolveAt(gw.String(), "n2.berth")
		ps, _ := exec.Command("sh", "-c", "ps -o pid,stat,wchan:20,args -p $(cat "+d.dir+"/networks/*/dnsmasq.pid); ss -uanp | grep dnsmasq | grep "+gw.String()).CombinedOutput()
		in1 += fmt.Sprintf("\nhost resolve: %v %v\n%s", hostRes, herr, ps)
		t.Fatalf("after reboot: %s %v\n%s\n%s", out, err, dbg, in1)
	}

	// The network in use cannot go.
	_, err = d.berthErr("network", "delete", nw.Name)
	if err == nil {
		t.Fatal("deleting the default network in use succeeded")
	}

	// Deleting the last containers leaves no veth on the bridge, and frees the names.
	hosts := []string{eth0.HostName, st2.Network["eth0"].HostName}
	n2st, _ := d.c.GetInstanceState(context.Background(), "n2")
	hosts = append(hosts, n2st.Network["eth0"].HostName)
	d.berth("delete", "-f", "n1")
	d.berth("delete", "-f", "n2")
	for _, h := range hosts {
		if ip.LinkExists(h) {
			t.Fatalf("veth %s left after delete", h)
		}
	}

	links, _ := ip.Links()
	for _, l := range links {
		if l.Master == nw.Name {
			t.Fatalf("%s still has port %s", nw.Name, l.Name)
		}
	}

	ports, _ := firewall.Ports(nw.Name)
	if len(ports) != 0 {
		t.Fatalf("port filters left: %v", ports)
	}

	hostsFile, _ := os.ReadFile(filepath.Join(d.dir, "networks", nw.Name, "dnsmasq.hosts"))
	if len(bytes.TrimSpace(hostsFile)) != 0 {
		t.Fatalf("reservations left:\n%s", hostsFile)
	}

	testNetworkAPI(t, d, nw)
}

func testLXCListShowsAddresses(t *testing.T, d *daemon, addrs map[string]string) {
	lxcBin := "/usr/bin/lxc"
	_, err := os.Stat(lxcBin)
	if err != nil {
		if testutil.Strict() {
			t.Fatal("lxc (lxd-client) is not installed")
		}

		t.Log("lxc not installed: skipping lxc list")
		return
	}

	conf := t.TempDir()
	lxc := func(args ...string) string {
		cmd := exec.Command(lxcBin, args...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}

	_ = lxc("list") // first run prints a welcome hint
	out := lxc("list")
	for _, a := range addrs {
		if !strings.Contains(out, a+" (eth0)") {
			t.Fatalf("lxc list lacks %s:\n%s", a, out)
		}
	}

	out = lxc("network", "list")
	if !strings.Contains(out, d.defaultNetwork().Name) || !strings.Contains(out, "YES") {
		t.Fatalf("lxc network list:\n%s", out)
	}
}

// testAntiSpoofing: n1 sending from another address, or with another MAC, does not reach
// n2; with its own it does.
func testAntiSpoofing(t *testing.T, d *daemon, addrs map[string]string) {
	ownIP := net.ParseIP(addrs["n1"]).To4()
	spoof := net.IPv4(ownIP[0], ownIP[1], ownIP[2], ownIP[3]^0x80).String()
	d.mustInside("n1", "ip", "addr", "add", spoof+"/24", "dev", "eth0")
	_, err := d.inside("n1", "ping", "-c2", "-W1", "-I", spoof, addrs["n2"])
	if err == nil {
		t.Fatalf("n1 reached n2 from spoofed address %s", spoof)
	}

	d.mustInside("n1", "ip", "addr", "del", spoof+"/24", "dev", "eth0")
	d.mustInside("n1", "ping", "-c1", "-W2", addrs["n2"])

	// MAC: stop networkd so that the address stays while the MAC changes.
	inst, _, _ := d.c.GetInstance(context.Background(), "n1")
	mac := inst.Config["volatile.eth0.hwaddr"]
	d.mustInside("n1", "systemctl", "stop", "systemd-networkd.socket", "systemd-networkd.service")
	d.mustInside("n1", "ip", "link", "set", "eth0", "address", "00:16:3e:12:34:56")
	d.mustInside("n1", "ip", "neigh", "flush", "all")
	_, err = d.inside("n1", "ping", "-c2", "-W1", addrs["n2"])
	if err == nil {
		t.Fatal("n1 reached n2 with a spoofed MAC")
	}

	d.mustInside("n1", "ip", "link", "set", "eth0", "address", mac)
	d.mustInside("n1", "ip", "neigh", "flush", "all")
	d.mustInside("n1", "systemctl", "start", "systemd-networkd.service")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = d.inside("n1", "ping", "-c1", "-W1", addrs["n2"])
		if err == nil {
			break
		}

		if time.Now().After(deadline) {
			t.Fatal("n1 did not get back to n2 with its own MAC")
		}
	}
}

// bridgeHas6 reports whether the bridge holds the ipv6.address value cidr.
func bridgeHas6(t *testing.T, bridge, cidr string) bool {
	gw, _, err := net.ParseCIDR(cidr)
	if err != nil {
		return false
	}

	l, err := netlink.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}

	addrs, _ := netlink.AddrList(l, netlink.FAMILY_V6)
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(gw) })
}

// portRules counts the rules of a port's filter chain, after flushing them if asked.
func portRules(t *testing.T, bridge, port string, flush bool) int {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}

	tbl := &nftables.Table{Name: firewall.TableName(bridge), Family: nftables.TableFamilyBridge}
	ch := &nftables.Chain{Name: "port-" + port, Table: tbl}
	if flush {
		c.FlushChain(ch)
		err = c.Flush()
		if err != nil {
			t.Fatal(err)
		}
	}

	rules, err := c.GetRules(tbl, ch)
	if err != nil {
		t.Fatalf("rules of port %s: %v", port, err)
	}

	return len(rules)
}

// testIPv6Spoofing: n1 sending from another address of the prefix does not reach n2, nor
// does its neighbour advertisement claiming n2's address move the host's neighbour entry
// of n2 to n1's MAC.
func testIPv6Spoofing(t *testing.T, d *daemon, bridge, gw6, spoof, n2 string) {
	d.mustInside("n1", "ip", "-6", "addr", "add", spoof+"/64", "dev", "eth0", "nodad")
	_, err := d.inside("n1", "ping", "-6", "-c2", "-W1", "-I", spoof, n2)
	if err == nil {
		t.Fatalf("n1 reached n2 from spoofed address %s", spoof)
	}

	d.mustInside("n1", "ip", "-6", "addr", "del", spoof+"/64", "dev", "eth0")

	inst1, _, _ := d.c.GetInstance(context.Background(), "n1")
	inst2, _, _ := d.c.GetInstance(context.Background(), "n2")
	mac1, _ := net.ParseMAC(inst1.Config["volatile.eth0.hwaddr"])
	mac2 := inst2.Config["volatile.eth0.hwaddr"]
	d.mustInside("n2", "ping", "-6", "-c1", "-W2", gw6) // the host learns n2

	err = sendNeighborAdvert(d.initPID("n1"), "eth0", net.ParseIP(n2), mac1)
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(200 * time.Millisecond)
	l, err := netlink.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}

	neigh, _ := netlink.NeighList(l.Attrs().Index, netlink.FAMILY_V6)
	i := slices.IndexFunc(neigh, func(n netlink.Neigh) bool { return n.IP.Equal(net.ParseIP(n2)) })
	if i < 0 || neigh[i].HardwareAddr.String() != mac2 {
		t.Fatalf("host's neighbour entry of n2 %s after n1's advertisement: %v, want %s", n2, neigh, mac2)
	}
}

// testNoRogueServices: n1 cannot be its neighbours' DHCP server or IPv6 router, nor send
// IPv6 from other than link-local; the same packets from the host do get through, so the
// drops are the filter's.
func testNoRogueServices(t *testing.T, d *daemon, bridge string, gw net.IP, addrs map[string]string) {
	pid := d.initPID("n1")
	n1 := net.ParseIP(addrs["n1"])

	// DHCP server port 67 as source: dropped; another source port: delivered.
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: gw})
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = l.Close() }()

	to := l.LocalAddr().(*net.UDPAddr)
	for _, port := range []int{67, 40067} {
		err = udpFrom(pid, n1, port, to, fmt.Sprint("from-", port))
		if err != nil {
			t.Fatal(err)
		}
	}

	buf := make([]byte, 64)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := l.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "from-40067" {
		t.Fatalf("from n1 the host got %q from %v (%v), want only from-40067", buf[:n], from, err)
	}

	// IPv6 from a global address: dropped; link-local: delivered.
	d.mustInside("n1", "ip", "-6", "addr", "add", "2001:db8:2::1/64", "dev", "eth0", "nodad")
	d.mustInside("n2", "ip", "-6", "addr", "add", "2001:db8:2::2/64", "dev", "eth0", "nodad")
	_, err = d.inside("n1", "ping", "-6", "-c2", "-W1", "2001:db8:2::2")
	if err == nil {
		t.Fatal("n1 reached n2 from global IPv6 address 2001:db8:2::1")
	}

	d.mustInside("n1", "ip", "-6", "addr", "del", "2001:db8:2::1/64", "dev", "eth0")
	d.mustInside("n2", "ip", "-6", "addr", "del", "2001:db8:2::2/64", "dev", "eth0")
	ll := strings.Fields(d.mustInside("n2", "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"))
	if len(ll) < 4 {
		t.Fatalf("n2 has no link-local address: %v", ll)
	}

	d.mustInside("n1", "ping", "-6", "-c1", "-W2", "-I", "eth0", strings.Split(ll[3], "/")[0])

	// A router advertisement from n1, then one from the host: once n2 has taken the
	// host's prefix it has seen n1's too, had it got through.
	err = sendRouterAdvert(pid, "eth0", net.ParseIP("2001:db8:6::"))
	if err != nil {
		t.Fatal(err)
	}

	err = sendRouterAdvert(0, bridge, net.ParseIP("2001:db8:5::"))
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		out := d.mustInside("n2", "ip", "-6", "-o", "addr", "show", "dev", "eth0")
		if strings.Contains(out, "2001:db8:6:") {
			t.Fatalf("n2 took the prefix advertised by n1:\n%s", out)
		}

		if strings.Contains(out, "2001:db8:5:") {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("n2 did not take the host's advertised prefix:\n%s", out)
		}

		time.Sleep(100 * time.Millisecond)
	}
}

// testNetworkAPI: create, set, delete through the CLI; bad input 400 and no trace.
func testNetworkAPI(t *testing.T, d *daemon, def *api.Network) {
	name := fmt.Sprintf("bt%dx", os.Getpid()%100000)
	d.berth("network", "create", name)
	n, _, err := d.c.GetNetwork(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	dnsPID := dnsmasqPID(t, d, name)
	tables, _ := firewall.Tables("inet")
	if !ip.LinkExists(name) || !alive(dnsPID, 0) || !slices.Contains(tables, firewall.TableName(name)) {
		t.Fatalf("network %s: bridge %v, dnsmasq %v, tables %v", name, ip.LinkExists(name), alive(dnsPID, 0), tables)
	}

	if n.Config["ipv4.address"] == def.Config["ipv4.address"] || n.Config["ipv4.nat"] != "true" {
		t.Fatalf("new network config %v", n.Config)
	}

	// IPv6: its own /64 on the bridge; none takes it away, auto gives a new one.
	if n.Config["ipv6.address"] == def.Config["ipv6.address"] || !bridgeHas6(t, name, n.Config["ipv6.address"]) {
		t.Fatalf("new network's IPv6 %q (default's %q) not on its bridge", n.Config["ipv6.address"], def.Config["ipv6.address"])
	}

	d.berth("network", "set", name, "ipv6.address", "none")
	if bridgeHas6(t, name, n.Config["ipv6.address"]) {
		t.Fatal("ipv6.address none left the bridge its IPv6 address")
	}

	d.berth("network", "set", name, "ipv6.address", "auto")
	n, _, _ = d.c.GetNetwork(context.Background(), name)
	if !bridgeHas6(t, name, n.Config["ipv6.address"]) {
		t.Fatalf("ipv6.address auto gave %q, not on the bridge", n.Config["ipv6.address"])
	}

	d.berth("network", "set", name, "user.note", "hello")
	n2, _, _ := d.c.GetNetwork(context.Background(), name)
	if n2.Config["user.note"] != "hello" || n2.Config["ipv4.address"] != n.Config["ipv4.address"] ||
		n2.Config["ipv6.address"] != n.Config["ipv6.address"] {
		t.Fatalf("after set: %v", n2.Config)
	}

	// Bad input: 400, and nothing created or changed.
	_, defNet, _ := net.ParseCIDR(def.Config["ipv4.address"])
	overlap := defNet.IP.To4()
	overlapCIDR := fmt.Sprintf("%d.%d.%d.%d/24", overlap[0], overlap[1], overlap[2], 200)
	before := managedNetworks(t, d)
	linksBefore, _ := ip.Links()
	bad := []string{
		`{"name":"bt-overlap","config":{"ipv4.address":"` + overlapCIDR + `"}}`,
		`{"name":"bt-cidr","config":{"ipv4.address":"10.1.300.1/24"}}`,
		`{"name":"bt-cidr2","config":{"ipv4.address":"10.1.3.0/24"}}`,
		`{"name":"bt\nnl","config":{}}`,
		`{"name":"bt-nlval","config":{"dns.domain":"berth\nserver=10.0.0.1"}}`,
		`{"name":"bt-key","config":{"no.such":"1"}}`,
		`{"name":"bt-v6len","config":{"ipv6.address":"fd42:1:2::1/48"}}`,
		`{"name":"bt-v6dup","config":{"ipv6.address":"` + def.Config["ipv6.address"] + `"}}`,
		`{"name":"` + def.Name + `","config":{}}`,
	}
	for _, body := range bad {
		code, resp := d.raw("POST", "/1.0/networks", strings.NewReader(body))
		want := http.StatusBadRequest
		if strings.Contains(body, def.Name) {
			want = http.StatusConflict
		}

		if code != want {
			t.Errorf("POST %s: %d %s, want %d", body, code, resp.Error, want)
		}
	}

	code, resp := d.raw("PUT", "/1.0/networks/"+name, strings.NewReader(`{"config":{"ipv4.address":"`+overlapCIDR+`"}}`))
	if code != http.StatusBadRequest {
		t.Errorf("PUT overlapping address: %d %s", code, resp.Error)
	}

	code, resp = d.raw("PATCH", "/1.0/networks/"+name, strings.NewReader(`{"config":{"user.x":"a\nb"}}`))
	if code != http.StatusBadRequest {
		t.Errorf("PATCH newline value: %d %s", code, resp.Error)
	}

	after := managedNetworks(t, d)
	if before != after {
		t.Fatalf("bad input changed something:\n%s\n%s", before, after)
	}

	// No new host interface of this daemon's: a bridge (its alias names our state
	// directory) or a port of one. Other tests' daemons may add links meanwhile.
	had := map[string]bool{}
	for _, l := range linksBefore {
		had[l.Name] = true
	}

	linksAfter, _ := ip.Links()
	for _, l := range linksAfter {
		if !had[l.Name] && (strings.Contains(l.Alias, d.dir+"/") || strings.HasPrefix(l.Name, "bt-") || l.Master == def.Name || l.Master == name) {
			t.Fatalf("bad input added host interface %s (alias %q, master %q)", l.Name, l.Alias, l.Master)
		}
	}

	n3, _, _ := d.c.GetNetwork(context.Background(), name)
	if fmt.Sprint(n3.Config) != fmt.Sprint(n2.Config) {
		t.Fatalf("rejected updates changed the config: %v", n3.Config)
	}

	all := d.berth("network", "list", "--format", "json")
	var list []api.Network
	_ = json.Unmarshal([]byte(all), &list)
	managed, lo := 0, false
	for _, n := range list {
		if n.Managed {
			managed++
		}

		lo = lo || (n.Name == "lo" && n.Type == "loopback" && !n.Managed)
	}

	if managed != 2 || !lo {
		t.Fatalf("networks after bad input (want 2 managed, and lo as an unmanaged loopback): %s", all)
	}

	// Host interfaces are there as LXD shows them, but not Berth's to change.
	if code, env := d.raw("GET", "/1.0/networks/lo", nil); code != 200 || !strings.Contains(string(env.Metadata), `"managed":false`) {
		t.Errorf("GET lo: %d %s", code, env.Metadata)
	}

	for _, m := range []string{"PUT", "DELETE"} {
		if code, _ := d.raw(m, "/1.0/networks/lo", strings.NewReader(`{"config":{}}`)); code != http.StatusBadRequest {
			t.Errorf("%s lo: %d, want 400", m, code)
		}
	}

	if code, _ := d.raw("POST", "/1.0/networks", strings.NewReader(`{"name":"lo","config":{}}`)); code != http.StatusConflict {
		t.Errorf("creating a network named lo: %d, want 409", code)
	}

	// Delete removes bridge, dnsmasq and both tables.
	d.berth("network", "delete", name)
	tables, _ = firewall.Tables("inet")
	btables, _ := firewall.Tables("bridge")
	if ip.LinkExists(name) || alive(dnsPID, 2*time.Second) || slices.Contains(tables, firewall.TableName(name)) ||
		slices.Contains(btables, firewall.TableName(name)) {
		t.Fatalf("left after delete: bridge %v dnsmasq %v tables %v %v", ip.LinkExists(name), alive(dnsPID, 0), tables, btables)
	}

	if _, err := os.Stat(filepath.Join(d.dir, "networks", name)); err == nil {
		t.Fatal("network directory left")
	}
}

// TestNICHotplug adds a second NIC to a running container and removes it, as LXD does:
// the interface appears inside with its own MAC and a host end on the bridge, and both
// go on removal.
func TestNICHotplug(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	nw := d.defaultNetwork()
	d.berth("launch", "debian/12", "hp1")
	d.waitRunning("hp1")

	d.berth("config", "device", "add", "hp1", "extra", "nic", "network="+nw.Name, "name=eth1")

	inst, _, err := d.c.GetInstance(context.Background(), "hp1")
	if err != nil {
		t.Fatal(err)
	}

	mac, host := inst.Config["volatile.extra.hwaddr"], inst.Config["volatile.extra.host_name"]
	if mac == "" || host == "" {
		t.Fatalf("volatile keys of the new NIC: %v", inst.Config)
	}

	out, err := d.inside("hp1", "cat", "/sys/class/net/eth1/address")
	if err != nil || strings.TrimSpace(out) != mac {
		t.Fatalf("eth1 inside: %q %v, want MAC %s", out, err, mac)
	}

	l, err := netlink.LinkByName(host)
	if err != nil {
		t.Fatalf("host end %s: %v", host, err)
	}

	if br, err := netlink.LinkByIndex(l.Attrs().MasterIndex); err != nil || br.Attrs().Name != nw.Name {
		t.Errorf("host end %s is not on %s: %v", host, nw.Name, err)
	}

	// network info (ours and the stock client's) shows the bridge with the new port.
	gw := strings.Split(nw.Config["ipv4.address"], "/")[0]
	info := d.berth("network", "info", nw.Name)
	for _, want := range []string{"State: up", gw, "Bridge:", host} {
		if !strings.Contains(info, want) {
			t.Errorf("berth network info lacks %q:\n%s", want, info)
		}
	}

	if lxcBin, err := exec.LookPath("lxc"); err == nil {
		cmd := exec.Command(lxcBin, "network", "info", nw.Name)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), gw) || !strings.Contains(string(out), host) {
			t.Errorf("lxc network info: %v\n%s", err, out)
		}
	} else if testutil.Strict() {
		t.Error("lxc (Debian package lxd-client) is not installed")
	}

	if code, _ := d.raw("GET", "/1.0/networks/nosuchnet0/state", nil); code != 404 {
		t.Errorf("state of a missing network: %d", code)
	}

	// eth0 was there from the start and stays untouched.
	if a := d.waitIPv4("hp1", 10*time.Second); a == "" {
		t.Error("eth0 lost its address")
	}

	d.berth("config", "device", "remove", "hp1", "extra")

	if out, err := d.inside("hp1", "test", "-e", "/sys/class/net/eth1"); err == nil {
		t.Errorf("eth1 still inside after removal: %s", out)
	}

	if ip.LinkExists(host) {
		t.Errorf("host end %s left after removal", host)
	}

	inst, _, err = d.c.GetInstance(context.Background(), "hp1")
	if err != nil {
		t.Fatal(err)
	}

	for _, k := range []string{"volatile.extra.hwaddr", "volatile.extra.host_name"} {
		if inst.Config[k] != "" {
			t.Errorf("%s left: %s", k, inst.Config[k])
		}
	}

	d.berth("delete", "-f", "hp1")
}

// managedNetworks is `berth network list --format json` of d's own networks: the host's
// other interfaces (those other tests' daemons make meanwhile among them) are left out.
func managedNetworks(t *testing.T, d *daemon) string {
	t.Helper()

	var all []map[string]any
	err := json.Unmarshal([]byte(d.berth("network", "list", "--format", "json")), &all)
	if err != nil {
		t.Fatal(err)
	}

	var own []map[string]any
	for _, n := range all {
		if n["managed"] == true {
			own = append(own, n)
		}
	}

	b, err := json.Marshal(own)
	if err != nil {
		t.Fatal(err)
	}

	return string(b)
}
