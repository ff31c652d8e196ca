package integration

import (
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/firewall"
)

// TestLaunchOnFullNetwork: a launch on a network with no free address fails with one line
// that names the network and the fix, and leaves nothing behind. The address is reserved
// in the background while the start goes on (lxd/device Prepare), and its failure must
// still stop the start before the container runs and undo all of it.
func TestLaunchOnFullNetwork(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	nw := d.defaultNetwork()
	gw, _, err := net.ParseCIDR(nw.Config["ipv4.address"])
	if err != nil {
		t.Fatal(err)
	}

	// A /30: the gateway and one address for containers.
	d.berth("network", "set", nw.Name, "ipv4.address="+gw.String()+"/30")
	d.berth("launch", "debian/12", "full1")

	portsBefore := bridgePorts(t, nw.Name)
	filtersBefore, err := firewall.Ports(nw.Name)
	if err != nil {
		t.Fatal(err)
	}

	sort.Strings(filtersBefore)
	out, err := d.berthErr("launch", "debian/12", "full2")
	// The progress lines, then the error's one line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	msg := lines[len(lines)-1]
	t.Logf("launch on the full network: %s", msg)
	if err == nil || !strings.HasPrefix(msg, "Error: ") || !strings.Contains(msg, "network "+nw.Name+" has no free IPv4 address") ||
		!strings.Contains(msg, "widen ipv4.address") {
		t.Errorf("launch on a full network: %v\n%s\nwant a last line naming %s and the fix", err, out, nw.Name)
	}

	requireLaunchLeftNothing(t, d, "full2", portsBefore, filtersBefore)
	if st := d.waitRunning("full1"); st != "running" {
		t.Errorf("full1 after the failed launch: systemd says %q", st)
	}
}
