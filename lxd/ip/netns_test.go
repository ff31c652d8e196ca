package ip

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/test/testutil"
)

// A veth's host end is named only for the pair whose other end is on the host: a pair
// made inside the namespace has a peer index that means some unrelated host link.
func TestInterfacesHostName(t *testing.T) {
	pid := testNetns(t)

	host := fmt.Sprintf("bth%d", os.Getpid()%100000)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "eth0", PeerNamespace: netlink.NsPid(pid)}
	err := netlink.LinkAdd(veth)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = netlink.LinkDel(veth) })

	// A pair inside the namespace: its ends' indexes are small and, on a host with a few
	// links, also name host links.
	err = inNetns(pid, func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "in0"}, PeerName: "in1"})
	})
	if err != nil {
		t.Fatal(err)
	}

	ifaces, err := Interfaces(pid)
	if err != nil {
		t.Fatal(err)
	}

	seen := map[string]string{}
	for _, it := range ifaces {
		seen[it.Name] = it.HostName
	}

	if seen["eth0"] != host {
		t.Errorf("eth0's host end is %q, want %q", seen["eth0"], host)
	}

	for _, n := range []string{"in0", "in1"} {
		if hn, ok := seen[n]; !ok || hn != "" {
			t.Errorf("%s (a pair inside the namespace): present %v, host end %q, want none", n, ok, hn)
		}
	}
}

// testNetns starts a process in a network namespace of its own for the test's life and
// returns its pid.
func testNetns(t *testing.T) int {
	t.Helper()
	testutil.RequireRoot(t, "network namespaces and veths")

	ns := exec.Command("unshare", "-n", "sleep", "60")
	err := ns.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = ns.Process.Kill(); _ = ns.Wait() })
	pid := ns.Process.Pid
	// unshare runs after the exec: wait until the child is in its own namespace.
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; ; i++ {
		theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if theirs != "" && theirs != self {
			break
		}

		if i == 500 {
			t.Fatal("the child never unshared its network namespace")
		}

		time.Sleep(10 * time.Millisecond)
	}

	return pid
}
