package integration

import (
	"net"
	"strings"
	"testing"
	"time"
)

// dialFrom connects from inside container name to addr:port with perl and reports whether
// the hello server answered.
func dialFrom(d *daemon, name, addr, port string) bool {
	script := `use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => "` + addr + `", PeerPort => ` + port +
		`, Timeout => 2) or exit 1; my $l = <$s>; exit($l =~ /hello forward/ ? 0 : 1)`
	_, err := d.inside(name, "timeout", "5", "perl", "-e", script)
	return err == nil
}

// hostReaches reports whether the host gets the hello server's answer from addr:port.
func hostReaches(addr, port string) bool {
	line, err := dialRead(net.JoinHostPort(addr, port))
	return err == nil && strings.HasPrefix(line, "hello forward")
}

// TestLXCNetworkACL: lxc network acl create/rule add/rule remove/show/delete, applied to
// a network through security.acls: traffic from the host and from another container to a
// server in a container stops under the default ingress action, flows again for the
// sources a rule allows, stops again under a drop rule (drop before allow, as LXD), and
// flows once the ACL is removed; bad rules are refused and change nothing; an ACL in use
// cannot be deleted.
func TestLXCNetworkACL(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	lxc := newLXCRunner(t, d)
	def := d.defaultNetwork()
	gw, _, _ := net.ParseCIDR(def.Config["ipv4.address"])
	t.Cleanup(func() {
		_, _ = lxc.run("network", "unset", def.Name, "security.acls")
		_, _ = lxc.run("network", "acl", "delete", "web")
	})

	for _, c := range []string{"c1", "c2"} {
		lxc.must("launch", "debian/12", c)
	}

	for _, c := range []string{"c1", "c2"} {
		if st := d.waitRunning(c); st != "running" {
			t.Fatalf("systemd in %s is %q", c, st)
		}
	}

	a1, a2 := d.waitIPv4("c1", 20*time.Second), d.waitIPv4("c2", 20*time.Second)
	helloServer(t, d, "c1", "8080")
	if _, err := dialUntil(net.JoinHostPort(a1, "8080"), 10*time.Second); err != nil {
		t.Fatalf("server in c1 not up: %v", err)
	}

	expect := func(step string, host, c2 bool) {
		t.Helper()
		// Rules apply atomically, but give a connection in flight a moment.
		if got := hostReaches(a1, "8080"); got != host {
			t.Errorf("%s: host reaches c1: %v, want %v", step, got, host)
		}

		if got := dialFrom(d, "c2", a1, "8080"); got != c2 {
			t.Errorf("%s: c2 reaches c1: %v, want %v", step, got, c2)
		}
	}

	expect("no ACL", true, true)
	lxc.must("network", "acl", "create", "web")
	lxc.must("network", "set", def.Name, "security.acls=web", "security.acls.default.egress.action=allow")
	expect("empty ACL, default ingress reject", false, false)

	lxc.must("network", "acl", "rule", "add", "web", "ingress", "action=allow", "protocol=tcp", "destination_port=8080", "source="+a2)
	expect("allow from c2", false, true)

	lxc.must("network", "acl", "rule", "add", "web", "ingress", "action=allow", "protocol=tcp", "destination_port=8080", "source="+gw.String()+"/32")
	expect("allow from c2 and the host", true, true)

	lxc.must("network", "acl", "rule", "add", "web", "ingress", "action=drop", "source="+a2)
	expect("drop from c2 before allow", true, false)

	lxc.must("network", "acl", "rule", "remove", "web", "ingress", "action=drop", "source="+a2)
	expect("drop removed", true, true)

	// Bad rules are refused and change nothing.
	show := lxc.must("network", "acl", "show", "web")
	for _, bad := range [][]string{
		{"action=bogus"},
		{"action=allow", "source=10.0.0.300"},
		{"action=allow", "protocol=tcp", "destination_port=70000"},
		{"action=allow", "protocol=icmp4", "destination_port=80"},
		{"action=allow", "source=nosuchacl"},
		{"action=allow", "state=sometimes"},
	} {
		lxc.fails(append([]string{"network", "acl", "rule", "add", "web", "ingress"}, bad...)...)
	}

	if again := lxc.must("network", "acl", "show", "web"); again != show {
		t.Errorf("refused rules changed the ACL:\n%s\nwas\n%s", again, show)
	}

	if !strings.Contains(show, "destination_port: \"8080\"") || !strings.Contains(show, "/1.0/networks/"+def.Name) {
		t.Errorf("acl show:\n%s", show)
	}

	lxc.fails("network", "set", def.Name, "security.acls=nosuchacl")
	lxc.fails("network", "acl", "delete", "web") // in use
	expect("after refused changes", true, true)

	lxc.must("network", "acl", "rule", "remove", "web", "ingress", "action=allow", "protocol=tcp", "destination_port=8080", "source="+a2)
	expect("allow from c2 removed", true, false)

	lxc.must("network", "unset", def.Name, "security.acls")
	expect("ACL removed from the network", true, true)
	lxc.must("network", "acl", "delete", "web")
}
