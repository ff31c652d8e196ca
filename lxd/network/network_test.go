package network

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

func requireRoot(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/usr/sbin/dnsmasq")
	if os.Geteuid() == 0 && err == nil {
		return
	}

	testutil.SkipOrFail(t, "needs root and dnsmasq")
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestValidateConfig(t *testing.T) {
	good := []map[string]string{
		{"ipv4.address": "10.9.8.1/24", "ipv4.nat": "true", "ipv6.address": "none", "dns.domain": "berth"},
		{"ipv4.address": "auto", "user.note": "anything goes"},
		{"bridge.mtu": "1400"},
		{"ipv6.address": "auto", "ipv6.nat": "false"},
		{"ipv6.address": "fd42:1:2:3::1/64"},
	}
	for _, c := range good {
		err := ValidateConfig(c)
		if err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}

	bad := []map[string]string{
		{"ipv4.address": "10.9.8.0/24"},   // network address
		{"ipv4.address": "10.9.8.255/24"}, // broadcast
		{"ipv4.address": "10.9.8.1"},      // no prefix
		{"ipv4.address": "300.1.1.1/24"},
		{"ipv4.address": "10.9.8.1/24\nno-resolv"},
		{"user.x": "a\rb"},
		{"dns.domain": "berth\nserver=1.1.1.1"},
		{"dns.domain": "-bad"},
		{"ipv6.address": "fd42:1:2::1/48"},  // not a /64
		{"ipv6.address": "fd42:1:2:3::/64"}, // the prefix itself
		{"ipv6.address": "fe80::1/64"},      // link-local
		{"ipv6.address": "10.9.8.1/24"},
		{"ipv6.address": "yes"},
		{"ipv6.nat": "maybe"},
		{"ipv4.nat": "maybe"},
		{"bogus.key": "1"},
		{"bridge.mtu": "70000"},
	}
	for _, c := range bad {
		err := ValidateConfig(c)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("%q: got %v, want a 400", c, err)
		}
	}

	for _, n := range []string{"", "a/b", "abcdefghijklmnop", "br\n0", "br 0", "default"} {
		if ValidateName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}

func TestOverlap(t *testing.T) {
	requireRoot(t)
	m := NewManager(t.TempDir(), quietLog())
	_, taken, _ := net.ParseCIDR("10.77.0.0/16")
	_, err := m.FillDefaults("x", map[string]string{"ipv4.address": "10.77.5.1/24"})
	if err != nil {
		t.Fatalf("free subnet refused: %v", err)
	}

	err = CheckSubnet("10.77.5.1/24", "x", []*net.IPNet{taken})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("overlap with another network: %v", err)
	}

	// The host's own loopback route.
	err = CheckSubnet("127.0.0.1/8", "x", nil)
	if err == nil {
		t.Fatal("overlap with the host accepted")
	}

	cfg, err := m.FillDefaults("x", nil)
	if err != nil {
		t.Fatal(err)
	}

	_, prefix6, err := ParseGateway6(cfg["ipv6.address"])
	if !strings.HasPrefix(cfg["ipv4.address"], "10.") || cfg["ipv4.nat"] != "true" ||
		err != nil || prefix6.IP[0] != 0xfd || cfg["ipv6.nat"] != "true" {
		t.Fatalf("defaults %v (%v)", cfg, err)
	}

	_, taken6, _ := net.ParseCIDR("fd42:1:2::/48")
	err = CheckPrefix6("fd42:1:2:3::1/64", "x", []*net.IPNet{taken6})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("IPv6 overlap with another network: %v", err)
	}

	if CheckPrefix6("fd42:1:3:3::1/64", "x", []*net.IPNet{taken6}) != nil {
		t.Fatal("a free IPv6 prefix refused")
	}
}

func TestEUI64(t *testing.T) {
	_, prefix, _ := net.ParseCIDR("fd42:1:2:3::/64")
	mac, _ := net.ParseMAC("00:16:3e:06:68:29")
	// What systemd-networkd configured for this MAC in a container.
	if got := eui64(prefix, mac).String(); got != "fd42:1:2:3:216:3eff:fe06:6829" {
		t.Fatalf("eui64 = %s", got)
	}
}

// TestBridgeLifecycle brings a network up, reserves addresses, restarts the "daemon" (a new
// Manager) to check that dnsmasq is adopted and not restarted, kills dnsmasq to check the
// supervision, and deletes everything.
func TestBridgeLifecycle(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	// dnsmasq reads its hosts files as an unprivileged user, like under $BERTH_DIR (0711).
	_ = os.Chmod(dir, 0o711)
	_ = os.Chmod(filepath.Dir(dir), 0o711)
	name := fmt.Sprintf("btn%d", os.Getpid()%100000)
	m := NewManager(dir, quietLog())
	cfg, err := m.FillDefaults(name, nil)
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
	})

	if !ip.LinkExists(name) {
		t.Fatal("no bridge")
	}

	pid := readPID(t, filepath.Join(dir, name))
	mac1, _ := net.ParseMAC("00:16:3e:00:00:01")
	mac2, _ := net.ParseMAC("00:16:3e:00:00:02")
	a1, err := n.Reserve("c1.eth0", "c1", mac1, nil)
	if err != nil {
		t.Fatal(err)
	}

	a2, err := n.Reserve("c2.eth0", "c2", mac2, nil)
	if err != nil {
		t.Fatal(err)
	}

	again, _ := n.Reserve("c1.eth0", "c1", mac1, nil)
	if a1.Equal(a2) || !again.Equal(a1) || a1.Equal(n.Gateway()) {
		t.Fatalf("addresses %s %s %s (gateway %s)", a1, a2, again, n.Gateway())
	}

	_, err = n.Reserve("c3.eth0", "c3", mac2, a1)
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("taken address: %v", err)
	}

	_, err = n.Reserve("c3.eth0", "c3\nx", mac2, nil)
	if err == nil {
		t.Fatal("host name with a newline accepted")
	}

	// The same MAC under a new owner (a renamed instance) replaces the old reservation.
	mac4, _ := net.ParseMAC("00:16:3e:00:00:04")
	_, _ = n.Reserve("old.eth0", "old", mac4, nil)
	_, _ = n.Reserve("new.eth0", "new", mac4, nil)
	names, _ := os.ReadFile(filepath.Join(dir, name, "dnsmasq.dns"))
	if strings.Contains(string(names), " old\n") || !strings.Contains(string(names), " new\n") {
		t.Fatalf("renamed owner:\n%s", names)
	}

	_ = n.Release("new.")
	hosts, _ := os.ReadFile(filepath.Join(dir, name, "dnsmasq.hosts"))
	if string(hosts) != "00:16:3e:00:00:01,"+a1.String()+"\n00:16:3e:00:00:02,"+a2.String()+"\n" {
		t.Fatalf("dnsmasq.hosts (MAC and address only: names are in dnsmasq.dns):\n%s", hosts)
	}

	// The DNS records answer on the gateway: IPv4, and the SLAAC address in the prefix.
	waitDNS(t, n.Gateway(), "c2.berth", a2, filepath.Join(dir, name))
	gw6, prefix6, err := ParseGateway6(cfg["ipv6.address"])
	if err != nil {
		t.Fatal(err)
	}

	waitDNS(t, n.Gateway(), "c2.berth", eui64(prefix6, mac2), filepath.Join(dir, name))
	nets6, _ := ip.HostNets6()
	if !slices.ContainsFunc(nets6, func(p *net.IPNet) bool { return p.String() == prefix6.String() }) {
		t.Fatalf("bridge has no address in %s (gateway %s): host IPv6 networks %v", prefix6, gw6, nets6)
	}

	// A second daemon adopts the running dnsmasq.
	m.Close()
	m2 := NewManager(dir, quietLog())
	err = m2.Load(name, "bridge", cfg)
	if err != nil {
		t.Fatal(err)
	}

	n, _ = m2.Get(name)
	if p := readPID(t, filepath.Join(dir, name)); p != pid {
		log, _ := os.ReadFile(filepath.Join(dir, name, "dnsmasq.log"))
		t.Fatalf("dnsmasq restarted on adoption: %d then %d; its log:\n%s", pid, p, log)
	}

	// Supervision: a killed dnsmasq comes back.
	err = syscall.Kill(pid, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		p := readPID(t, filepath.Join(dir, name))
		if p != pid && isOurProcess(p, newDnsmasq(filepath.Join(dir, name), quietLog()).args()) {
			pid = p
			break
		}

		if time.Now().After(deadline) {
			t.Fatal("dnsmasq not restarted")
		}

		time.Sleep(50 * time.Millisecond)
	}

	err = n.Release("c1.")
	if err != nil {
		t.Fatal(err)
	}

	hosts, _ = os.ReadFile(filepath.Join(dir, name, "dnsmasq.hosts"))
	if strings.Contains(string(hosts), "c1") {
		t.Fatalf("released reservation still there:\n%s", hosts)
	}

	err = m2.Delete(name)
	if err != nil {
		t.Fatal(err)
	}

	if ip.LinkExists(name) {
		t.Fatal("bridge left")
	}

	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatal("dnsmasq left")
	}

	tables, _ := firewall.Tables("inet")
	if slices.Contains(tables, firewall.TableName(name)) {
		t.Fatal("table left")
	}
}

func readPID(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "dnsmasq.pid"))
	if err != nil {
		t.Fatal(err)
	}

	var pid int
	fmt.Sscan(string(data), &pid)
	return pid
}

func waitDNS(t *testing.T, server net.IP, name string, want net.IP, dir string) {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", net.JoinHostPort(server.String(), "53"))
	}}

	deadline := time.Now().Add(3 * time.Second)
	for {
		addrs, err := r.LookupHost(context.Background(), name)
		if err == nil && slices.Contains(addrs, want.String()) {
			return
		}

		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.log"))
			conf, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.conf"))
			dns, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.dns"))
			t.Fatalf("resolving %s at %s: %v %v\n%s\n%s\n%s", name, server, addrs, err, log, conf, dns)
		}

		time.Sleep(50 * time.Millisecond)
	}
}
