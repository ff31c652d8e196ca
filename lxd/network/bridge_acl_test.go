package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/test/testutil"
)

// A bridge with ACLs writes them for a port whose filter it wrote. For an unchanged port
// (a restart's refresh) it writes them only while no write has succeeded since the bridge
// started or since one failed, at most once per aclMendPause, and a failure to mend them
// is not the port's: its own filter is in place.
func TestPortAddWritesACLsAfterAFailure(t *testing.T) {
	testutil.RequireRoot(t, "use nftables")
	name := fmt.Sprintf("bacl%d", os.Getpid()%100000)
	t.Cleanup(func() { _ = firewall.Remove(name) })
	b, err := newBridge(t.TempDir(), name, map[string]string{"ipv4.address": "10.20.8.1/24", "security.acls": "web"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}

	// As lxd/networks' write does: it records its outcome (Manager.ACLsWritten).
	writes, fail := 0, false
	b.aclApply = func(string) error {
		writes++
		if fail {
			b.aclsWritten(false)
			return errors.New("injected")
		}

		b.aclsWritten(true)
		return nil
	}

	mac, _ := net.ParseMAC("00:16:3e:00:08:02")
	addr := net.ParseIP("10.20.8.2")
	add := func(step, port string, wantWrites int, wantErr bool) {
		t.Helper()
		err := b.PortAdd(port, mac, addr, PortACL{})
		if (err != nil) != wantErr || writes != wantWrites {
			t.Fatalf("%s: %d writes of the ACLs, err %v; want %d, error %v", step, writes, err, wantWrites, wantErr)
		}
	}

	add("a new port", "vacl1", 1, false)
	add("the same port again", "vacl1", 1, false)

	// The network's own write failed: the next unchanged port writes them, then they are
	// current again.
	b.aclsWritten(false)
	add("unchanged, after a failed write of the network", "vacl1", 2, false)
	add("unchanged, after that", "vacl1", 2, false)

	// A mend that fails is logged, not the port's error, and not tried again by the next
	// ports until the pause is over.
	b.aclsWritten(false)
	fail = true
	add("unchanged, the mend fails", "vacl1", 3, false)
	add("unchanged, within the pause", "vacl1", 3, false)
	b.mu.Lock()
	b.aclMendAt = time.Time{}
	b.mu.Unlock()
	fail = false
	add("unchanged, after the pause", "vacl1", 4, false)
	add("unchanged, once written", "vacl1", 4, false)

	// A new port whose ACLs cannot be written fails: it must not get its link.
	fail = true
	add("a new port, the write fails", "vacl2", 5, true)
}
