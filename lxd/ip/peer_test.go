package ip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// The reader sees a container's NIC from the host: the host end's counters and where its
// peer is, the peer's addresses and the loopback inside, without entering the namespace;
// and it stops reading a namespace that holds more addresses than it takes in.
func TestNetlinkReaderPeer(t *testing.T) {
	pid := testNetns(t)
	host := fmt.Sprintf("bpr%d", os.Getpid()%100000)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "eth0", PeerNamespace: netlink.NsPid(pid)}
	err := netlink.LinkAdd(veth)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = netlink.LinkDel(veth) })

	err = netlink.LinkSetUp(veth)
	if err != nil {
		t.Fatal(err)
	}

	inside := func(args ...string) {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(pid), "-n", "--"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}

	inside("ip", "link", "set", "lo", "up")
	inside("ip", "link", "set", "eth0", "up")
	inside("ip", "addr", "add", "10.254.7.2/24", "dev", "eth0")
	// Frames out of eth0 (ARP for an address nobody has) arrive at the host end.
	inside("bash", "-c", "echo x >/dev/udp/10.254.7.9/9")
	time.Sleep(100 * time.Millisecond)

	r := NewNetlinkReader()
	defer r.Close()

	links, err := r.HostLinks()
	if err != nil {
		t.Fatal(err)
	}

	l, ok := links[host]
	if !ok || l.PeerNetNsID < 0 || l.PeerIndex <= 0 || !l.Carrier || l.MTU == 0 {
		t.Fatalf("host end %s: %+v (found %v)", host, l, ok)
	}

	if l.Counters.RxPackets == 0 || l.Counters.Swapped().TxPackets != l.Counters.RxPackets {
		t.Errorf("host end counters %+v: the ARP requests sent inside are not there", l.Counters)
	}

	addrs, err := r.Addrs(l.PeerNetNsID, l.PeerIndex, 1)
	if err != nil {
		t.Fatal(err)
	}

	if !hasAddr(addrs[l.PeerIndex], "10.254.7.2", 24) || !hasAddr(addrs[1], "127.0.0.1", 8) {
		t.Fatalf("addresses inside: %+v", addrs)
	}

	lo, err := r.Link(l.PeerNetNsID, 1)
	if err != nil || lo.Name != "lo" || !lo.Loopback || !lo.Up {
		t.Fatalf("loopback inside: %+v %v", lo, err)
	}

	// Root inside adds more addresses than the reader takes: it stops, says so, and the
	// next read works on a fresh socket.
	var batch []byte
	for i := range maxNetnsAddrs + 10 {
		batch = fmt.Appendf(batch, "addr add 10.253.%d.%d/32 dev eth0\n", i/250, i%250+1)
	}

	cmd := exec.Command("nsenter", "-t", fmt.Sprint(pid), "-n", "--", "ip", "-batch", "-")
	cmd.Stdin = bytes.NewReader(batch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("adding addresses: %v\n%s", err, out)
	}

	_, err = r.Addrs(l.PeerNetNsID, l.PeerIndex)
	if !errors.Is(err, errTooMany) {
		t.Fatalf("reading %d addresses: %v, want errTooMany", maxNetnsAddrs+12, err)
	}

	lo, err = r.Link(l.PeerNetNsID, 1)
	if err != nil || lo.Name != "lo" {
		t.Fatalf("reading after a cut-off read: %+v %v", lo, err)
	}
}

func hasAddr(addrs []Addr, ip string, prefix int) bool {
	for _, a := range addrs {
		if a.IP == ip && a.Prefix == prefix && net.ParseIP(a.IP) != nil {
			return true
		}
	}

	return false
}
