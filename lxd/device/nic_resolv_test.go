package device

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/network"
)

// resolvNet is a network with a gateway and a domain, all resolv.conf needs.
type resolvNet struct {
	network.Network
	domain string
}

func (n resolvNet) Name() string    { return "berthbr0" }
func (n resolvNet) Gateway() net.IP { return net.IPv4(10, 0, 0, 1) }
func (n resolvNet) Domain() string  { return n.domain }

// TestWriteResolvConf: the image's empty file gets the network's; a start that finds the
// file as the last one left it writes nothing; another network's is written over; a file
// of the user's stays.
func TestWriteResolvConf(t *testing.T) {
	rootfs := t.TempDir()
	p := filepath.Join(rootfs, "etc", "resolv.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	ids := idmap.Set{HostUID: 0, HostGID: 0, Size: 65536}
	if err := writeResolvConf(rootfs, resolvNet{domain: "berth"}, ids); err != nil {
		t.Fatal(err)
	}

	got, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(got), resolvMarker) || !strings.Contains(string(got), "nameserver 10.0.0.1\nsearch berth\n") {
		t.Fatalf("resolv.conf = %q", got)
	}

	old := time.Unix(1000000000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}

	if err := writeResolvConf(rootfs, resolvNet{domain: "berth"}, ids); err != nil {
		t.Fatal(err)
	}

	if fi, _ := os.Stat(p); !fi.ModTime().Equal(old) {
		t.Errorf("an unchanged resolv.conf was written again (mtime %v)", fi.ModTime())
	}

	if err := writeResolvConf(rootfs, resolvNet{domain: "other"}, ids); err != nil {
		t.Fatal(err)
	}

	if got, _ := os.ReadFile(p); !strings.Contains(string(got), "search other\n") {
		t.Errorf("another network's resolv.conf was not written: %q", got)
	}

	mine := "nameserver 192.0.2.53\n"
	if err := os.WriteFile(p, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := writeResolvConf(rootfs, resolvNet{domain: "berth"}, ids); err != nil {
		t.Fatal(err)
	}

	if got, _ := os.ReadFile(p); string(got) != mine {
		t.Errorf("the user's resolv.conf was replaced: %q", got)
	}
}
