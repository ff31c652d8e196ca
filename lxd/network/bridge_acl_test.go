package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/test/testutil"
)

// A bridge with ACLs writes them for a port whose filter it wrote, and for an unchanged
// port (a restart's refresh) only while no write of its ACLs has succeeded since it
// started or since one failed: a failure at start is mended by the next port, without a
// write for each port once it is.
func TestPortAddWritesACLsAfterAFailure(t *testing.T) {
	testutil.RequireRoot(t, "use nftables")
	name := fmt.Sprintf("bacl%d", os.Getpid()%100000)
	t.Cleanup(func() { _ = firewall.Remove(name) })
	b, err := newBridge(t.TempDir(), name, map[string]string{"ipv4.address": "10.20.8.1/24", "security.acls": "web"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}

	writes, fail := 0, false
	b.aclApply = func(string) error {
		writes++
		if fail {
			return errors.New("injected")
		}

		return nil
	}

	mac, _ := net.ParseMAC("00:16:3e:00:08:02")
	addr := net.ParseIP("10.20.8.2")
	add := func(step string, wantWrites int, wantErr bool) {
		t.Helper()
		err := b.PortAdd("vacl1", mac, addr, PortACL{})
		if (err != nil) != wantErr || writes != wantWrites {
			t.Fatalf("%s: %d writes of the ACLs, err %v; want %d, error %v", step, writes, err, wantWrites, wantErr)
		}
	}

	add("a new port", 1, false)
	add("the same port again", 1, false)

	// The network's own write failed (lxd/networks tells the manager): the next port
	// writes them, then they are current again.
	b.aclsWritten(false)
	add("unchanged, after a failed write of the network", 2, false)
	add("unchanged, after that", 2, false)

	// A failed write from a port leaves the next one to try again.
	b.aclsWritten(false)
	fail = true
	add("unchanged, the write fails", 3, true)
	fail = false
	add("unchanged, after the port's failed write", 4, false)
	add("unchanged, once written", 4, false)
}
