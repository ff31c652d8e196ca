package integration

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/test/testutil"
)

// dialResult connects from inside container name to addr:port with perl: "ok" when the
// hello server answered, else perl's error ("Connection refused" for a reset).
func dialResult(d *daemon, name, addr, port string) string {
	script := `use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => "` + addr + `", PeerPort => ` + port +
		`, Timeout => 3) or do { print "fail: $!\n"; exit 1 }; my $l = <$s>; print($l =~ /hello forward/ ? "ok\n" : "fail: read\n")`
	out, _ := d.inside(name, "timeout", "6", "perl", "-e", script)
	return strings.TrimSpace(out)
}

// dialMarked is dialResult from a socket whose packets carry mark (SO_MARK, which root
// in the container may set in its own network namespace).
func dialMarked(d *daemon, name, addr, port string, mark uint32) string {
	script := fmt.Sprintf(`use Socket; socket(my $s, PF_INET, SOCK_STREAM, 0) or die;
setsockopt($s, SOL_SOCKET, 36, pack("L", %d)) or do { print "fail: setsockopt: $!\n"; exit 1 };
local $SIG{ALRM} = sub { print "fail: timeout\n"; exit 1 }; alarm 3;
connect($s, sockaddr_in(%s, inet_aton("%s"))) or do { print "fail: $!\n"; exit 1 };
my $l = <$s>; print($l =~ /hello forward/ ? "ok\n" : "fail: read\n")`, mark, port, addr)
	out, _ := d.inside(name, "timeout", "6", "perl", "-e", script)
	return strings.TrimSpace(out)
}

// TestLXCNICACL: security.acls on a container's NIC (not on its network), with the stock
// lxc: refused for an ACL that does not exist, applied at start and on a live change,
// listed in the ACL's used_by (which then cannot be deleted or renamed), gone with the key.
// Traffic between two containers shows it is stateful (the NIC's default egress action is
// reject, yet the replies of connections its ingress rules allow go out; an egress-only
// allow lets the replies in) and that reject rejects: the connecting side gets a TCP reset
// at once, not a timeout. The other container's NIC has no ACL and is never filtered.
func TestLXCNICACL(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	lxc := newLXCRunner(t, d)
	stateful := firewall.Stateful()
	if !stateful {
		// Without br_netfilter ACLs are stateless and reject drops: the traffic checks
		// below that need state are left out, which CI must not hide.
		if testutil.Strict() {
			t.Fatal("br_netfilter is off (net.bridge.bridge-nf-call-ip(6)tables): ACLs cannot be stateful")
		}

		t.Log("br_netfilter is off: checking stateless ACLs only")
	}
	t.Cleanup(func() {
		_, _ = lxc.run("delete", "-f", "c1", "c2")
		_, _ = lxc.run("network", "acl", "delete", "web")
	})

	lxc.must("network", "acl", "create", "web")
	lxc.must("init", "debian/12", "c1")
	lxc.must("config", "device", "override", "c1", "eth0", "security.acls=web")
	lxc.must("launch", "debian/12", "c2")
	lxc.must("start", "c1")
	for _, c := range []string{"c1", "c2"} {
		if st := d.waitRunning(c); st != "running" {
			t.Fatalf("systemd in %s is %q", c, st)
		}
	}

	a1, a2 := d.waitIPv4("c1", 30*time.Second), d.waitIPv4("c2", 30*time.Second)
	helloServer(t, d, "c1", "8080")
	helloServer(t, d, "c2", "8081")
	helloServer(t, d, "c2", "8082")
	if _, err := dialUntil(net.JoinHostPort(a2, "8081"), 10*time.Second); err != nil {
		t.Fatalf("server in c2 not up: %v", err)
	}

	expect := func(step, from, addr, port string, want bool) {
		t.Helper()
		got := dialResult(d, from, addr, port)
		if (got == "ok") != want {
			t.Errorf("%s: %s to %s:%s: %q, want reached %v", step, from, addr, port, got, want)
		}

		if !want && stateful && !strings.Contains(got, "refused") {
			t.Errorf("%s: %s to %s:%s: %q, want a reset (reject)", step, from, addr, port, got)
		}
	}

	expect("default ingress reject", "c2", a1, "8080", false)
	expect("default egress reject", "c1", a2, "8081", false)

	// The mark bits that carry "established" and "reject" from the inet table to the
	// bridge chains cannot be forged from inside: packets lose their mark when they leave
	// the container's network namespace. The same marked socket reaches c2, whose NIC has
	// no ACL (the mark itself is accepted inside).
	for _, mark := range []uint32{0x00100000, 0x00300000, 0xffffffff} {
		if got := dialMarked(d, "c2", a1, "8080", mark); got == "ok" {
			t.Errorf("c2 reaches c1 through its ACL with mark %#x", mark)
		}

		if got := dialMarked(d, "c1", a2, "8081", mark); got == "ok" {
			t.Errorf("c1 gets out through its ACL with mark %#x", mark)
		}
	}

	if got := dialMarked(d, "c2", a2, "8081", 0x00100000); got != "ok" {
		t.Errorf("marked socket to c2's own server: %q", got)
	}
	if !hostReaches(a2, "8081") {
		t.Errorf("host does not reach c2, whose NIC has no ACL")
	}

	lxc.must("network", "acl", "rule", "add", "web", "ingress", "action=allow", "protocol=tcp", "destination_port=8080", "source="+a2)
	if stateful {
		// c1's replies leave through its default egress reject: they are established.
		expect("ingress allow from c2", "c2", a1, "8080", true)
	}

	lxc.must("network", "acl", "rule", "add", "web", "egress", "action=allow", "protocol=tcp", "destination_port=8081")
	if stateful {
		// c2's replies come in through c1's default ingress reject.
		expect("egress allow to 8081", "c1", a2, "8081", true)
	}

	// A new berthd keeps the NIC's rules (its key is recorded with the port's filter) and
	// refreshes them.
	d.kill(syscall.SIGTERM)
	d.start()
	expect("after a restart: ingress allow from c2", "c2", a1, "8080", stateful)
	expect("after a restart: egress to another port", "c1", a2, "8082", false)
	if stateful {
		expect("after a restart: egress allow to 8081", "c1", a2, "8081", true)
	}

	show := lxc.must("network", "acl", "show", "web")
	if !strings.Contains(show, "/1.0/instances/c1") {
		t.Errorf("used_by lacks c1:\n%s", show)
	}

	lxc.fails("network", "acl", "delete", "web")
	lxc.fails("network", "acl", "rename", "web", "web2")

	// A live change to an ACL that does not exist is refused and changes nothing.
	out := lxc.fails("config", "device", "set", "c1", "eth0", "security.acls=nosuch")
	if !strings.Contains(out, "nosuch") {
		t.Errorf("refusal does not name the ACL: %s", out)
	}

	if got := lxc.must("config", "device", "get", "c1", "eth0", "security.acls"); strings.TrimSpace(got) != "web" {
		t.Errorf("security.acls after the refused change: %q", got)
	}

	lxc.fails("config", "device", "set", "c1", "eth0", "security.acls.default.ingress.action=maybe")

	// A live change of the default: ingress allowed, c1 reachable from the host too.
	lxc.must("config", "device", "set", "c1", "eth0", "security.acls.default.ingress.action=allow")
	a1 = d.waitIPv4("c1", 30*time.Second)
	if _, err := dialUntil(net.JoinHostPort(a1, "8080"), 20*time.Second); err != nil {
		t.Errorf("host does not reach c1 under ingress allow: %v", err)
	}

	expect("egress to another port still rejected", "c1", a2, "8082", false)

	lxc.must("config", "device", "unset", "c1", "eth0", "security.acls")
	lxc.must("config", "device", "unset", "c1", "eth0", "security.acls.default.ingress.action")
	a1 = d.waitIPv4("c1", 30*time.Second)
	if _, err := dialUntil(net.JoinHostPort(a1, "8080"), 20*time.Second); err != nil {
		t.Errorf("host does not reach c1 without ACLs: %v", err)
	}

	expect("no ACL: egress", "c1", a2, "8082", true)
	expect("no ACL: ingress from c2", "c2", a1, "8080", true)
	if show := lxc.must("network", "acl", "show", "web"); strings.Contains(show, "/1.0/instances/c1") {
		t.Errorf("used_by still lists c1:\n%s", show)
	}

	lxc.must("network", "acl", "delete", "web")
}
