package integration

import (
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/test/testutil"
)

// helloServer runs a TCP server in a container that answers "hello forward" on port.
func helloServer(t *testing.T, d *daemon, name, port string) {
	t.Helper()
	script := `use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => ` + port +
		`, Listen => 5, ReuseAddr => 1) or die "listen: $!"; while (my $c = $s->accept) { print $c "hello forward\n"; close $c }`
	d.mustInside(name, "systemd-run", "--unit=hello"+port, "perl", "-e", script)
}

// dialUntil dials addr until it answers "hello forward" (or the deadline).
func dialUntil(addr string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		line, err := dialRead(addr)
		if (err == nil && strings.HasPrefix(line, "hello forward")) || time.Now().After(deadline) {
			return line, err
		}

		time.Sleep(100 * time.Millisecond)
	}
}

// TestLXCNetworkForward: lxc network forward create/port add/list/show/delete on the
// default network; TCP from the host to the listen address (the address of a bridge the
// test creates, a host address) reaches a server in a container on the forwarded port and
// on the default target; bad forwards are refused and change nothing; a daemon start
// writes flushed forward rules again; deleting the forward stops the traffic.
func TestLXCNetworkForward(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	lxc := newLXCRunner(t, d)
	def := d.defaultNetwork().Name
	other := testNetName("f")
	t.Cleanup(func() { _, _ = lxc.run("network", "delete", other) })
	lxc.must("network", "create", other, "ipv6.address=none")
	n, _, err := d.c.GetNetwork(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}

	listen, _, _ := net.ParseCIDR(n.Config["ipv4.address"])
	lxc.must("launch", "debian/12", "c1")
	if st := d.waitRunning("c1"); st != "running" {
		t.Fatalf("systemd in c1 is %q", st)
	}

	addr := d.waitIPv4("c1", 20*time.Second)
	helloServer(t, d, "c1", "8080")
	line, err := dialUntil(net.JoinHostPort(addr, "8080"), 10*time.Second)
	if err != nil {
		t.Fatalf("server in c1 not up: %q %v", line, err)
	}

	fwd := net.JoinHostPort(listen.String(), "18080")
	if line, err := dialRead(fwd); err == nil {
		t.Fatalf("%s answers before any forward: %q", fwd, line)
	}

	lxc.must("network", "forward", "create", def, listen.String())
	lxc.must("network", "forward", "port", "add", def, listen.String(), "tcp", "18080", addr, "8080")
	line, err = dialUntil(fwd, 5*time.Second)
	if err != nil || !strings.HasPrefix(line, "hello forward") {
		t.Fatalf("TCP to %s through the forward: %q %v", fwd, line, err)
	}

	out := lxc.must("network", "forward", "list", def, "--format", "csv")
	if !strings.Contains(out, listen.String()) {
		t.Errorf("forward list:\n%s", out)
	}

	show := lxc.must("network", "forward", "show", def, listen.String())
	if !strings.Contains(show, "listen_port: \"18080\"") || !strings.Contains(show, "target_address: "+addr) {
		t.Errorf("forward show:\n%s", show)
	}

	// Bad input is refused and changes nothing.
	lxc.fails("network", "forward", "port", "add", def, listen.String(), "tcp", "18081", "10.255.255.9", "8080") // outside the subnet
	lxc.fails("network", "forward", "port", "add", def, listen.String(), "tcp", "70000", addr, "8080")
	lxc.fails("network", "forward", "port", "add", def, listen.String(), "sctp", "18082", addr, "8080")
	lxc.fails("network", "forward", "port", "add", def, listen.String(), "tcp", "18080", addr, "8081") // twice
	lxc.fails("network", "forward", "create", def, "192.0.2.77")                                       // not the host's
	lxc.fails("network", "forward", "create", def, "127.0.0.1")
	lxc.fails("network", "forward", "create", def, listen.String()) // exists
	if again := lxc.must("network", "forward", "show", def, listen.String()); again != show {
		t.Errorf("refused changes changed the forward:\n%s\nwas\n%s", again, show)
	}

	line, err = dialRead(fwd)
	if err != nil || !strings.HasPrefix(line, "hello forward") {
		t.Fatalf("forward after refused changes: %q %v", line, err)
	}

	// Each daemon start writes the forwards again from the database: rules that were
	// flushed while it was down (a host reboot loses them all) come back.
	nft := testutil.LookPath(t, "nft", "Debian package nftables")
	d.kill(syscall.SIGTERM)
	for _, chain := range []string{"forward-prerouting", "forward-output"} {
		out, err := exec.Command(nft, "flush", "chain", "inet", firewall.TableName(def), chain).CombinedOutput()
		if err != nil {
			t.Fatalf("flushing %s: %v %s", chain, err, out)
		}
	}

	if line, err := dialRead(fwd); err == nil {
		t.Fatalf("%s answers with its rules flushed: %q", fwd, line)
	}

	d.start()
	line, err = dialUntil(fwd, 10*time.Second)
	if err != nil || !strings.HasPrefix(line, "hello forward") {
		t.Fatalf("forward after a daemon start over flushed rules: %q %v", line, err)
	}

	lxc.must("network", "forward", "delete", def, listen.String())
	if line, err := dialRead(fwd); err == nil {
		t.Fatalf("%s answers after the forward was deleted: %q", fwd, line)
	}

	// A default target: every port of the listen address goes to c1.
	lxc.must("network", "forward", "create", def, listen.String(), "target_address="+addr)
	line, err = dialUntil(net.JoinHostPort(listen.String(), "8080"), 5*time.Second)
	if err != nil || !strings.HasPrefix(line, "hello forward") {
		t.Fatalf("TCP to %s:8080 through the default target: %q %v", listen, line, err)
	}

	lxc.must("network", "forward", "delete", def, listen.String())
}
