package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/test/testutil"
)

// lxcRunner runs Debian's lxc (lxd-client 5.0) against d.
type lxcRunner struct {
	t    *testing.T
	d    *daemon
	bin  string
	conf string
}

func newLXCRunner(t *testing.T, d *daemon) *lxcRunner {
	t.Helper()
	l := &lxcRunner{t: t, d: d, bin: testutil.LookPath(t, "lxc", "Debian package lxd-client"), conf: t.TempDir()}
	_, _ = l.run("list") // the first run of a fresh LXD_CONF only prints a welcome hint
	return l
}

func (l *lxcRunner) run(args ...string) (string, error) {
	cmd := exec.Command(l.bin, args...)
	cmd.Env = append(os.Environ(), "LXD_DIR="+l.d.dir, "LXD_CONF="+l.conf)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lxcRunner) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatalf("lxc %s: %v\n%s\nberthd log:\n%s", strings.Join(args, " "), err, out, tail(l.d.log.String(), 30))
	}

	return out
}

func (l *lxcRunner) fails(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err == nil {
		l.t.Fatalf("lxc %s worked:\n%s", strings.Join(args, " "), out)
	}

	return out
}

// testNetName is a bridge name no other test process on the host uses.
func testNetName(tag string) string { return fmt.Sprintf("t%s%d", tag, os.Getpid()%100000) }

// hasTable reports whether berth's nftables table of bridge exists in family.
func hasTable(t *testing.T, family, bridge string) bool {
	t.Helper()
	names, err := firewall.Tables(family)
	if err != nil {
		t.Fatal(err)
	}

	for _, n := range names {
		if n == firewall.TableName(bridge) {
			return true
		}
	}

	return false
}

// requireNetworkAt checks that network name runs completely: bridge, tables, dnsmasq
// configured for it, and that old left nothing behind.
func requireNetworkAt(t *testing.T, d *daemon, name, old string) {
	t.Helper()
	if !ip.LinkExists(name) {
		t.Errorf("bridge %s missing", name)
	}

	if !hasTable(t, "inet", name) {
		t.Errorf("nftables table of %s missing", name)
	}

	conf, err := os.ReadFile(filepath.Join(d.dir, "networks", name, "dnsmasq.conf"))
	if err != nil || !strings.Contains(string(conf), "interface="+name+"\n") || strings.Contains(string(conf), "/networks/"+old+"/") {
		t.Errorf("dnsmasq.conf of %s: %v\n%s", name, err, conf)
	}

	if pid := dnsmasqPID(t, d, name); pid <= 0 || !alive(pid, 0) {
		t.Errorf("dnsmasq of %s not running (pid %d)", name, pid)
	}

	if ip.LinkExists(old) || hasTable(t, "inet", old) || hasTable(t, "bridge", old) {
		t.Errorf("%s left its bridge or tables", old)
	}

	_, err = os.Stat(filepath.Join(d.dir, "networks", old))
	if err == nil {
		t.Errorf("%s left its state directory", old)
	}
}

// TestLXCNetworkRenameLeases: lxc network rename moves bridge, tables, dnsmasq and state
// to the new name, refuses a network in use and bad names, finishes a rename a crash
// interrupted after its database commit; lxc network list-leases shows a container's
// reservation.
func TestLXCNetworkRenameLeases(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	lxc := newLXCRunner(t, d)
	n1, n2, n3 := testNetName("ra"), testNetName("rb"), testNetName("rc")
	t.Cleanup(func() {
		_, _ = lxc.run("delete", "-f", "c1")
		for _, n := range []string{n1, n2, n3} {
			_, _ = lxc.run("network", "delete", n)
		}
	})

	lxc.must("network", "create", n1, "ipv6.address=none")
	lxc.must("network", "rename", n1, n2)
	requireNetworkAt(t, d, n2, n1)
	out := lxc.must("network", "list", "--format", "csv")
	if !strings.Contains(out, n2+",bridge,YES") || strings.Contains(out, n1) {
		t.Fatalf("network list after rename:\n%s", out)
	}

	// Bad input changes nothing.
	lxc.fails("network", "rename", n2, "bad/name")
	lxc.fails("network", "rename", n2, "waytoolongname12345")
	lxc.fails("network", "rename", n2, d.defaultNetwork().Name) // taken: 409
	lxc.fails("network", "rename", "lo", n3)                    // a host interface
	requireNetworkAt(t, d, n2, n1)

	// A container on the renamed network gets its address; the network is now in use.
	lxc.must("launch", "debian/12", "c1", "--network", n2)
	if st := d.waitRunning("c1"); st != "running" {
		t.Fatalf("systemd in c1 is %q", st)
	}

	addr := d.waitIPv4("c1", 20*time.Second)
	out = lxc.fails("network", "rename", n2, n3)
	if !strings.Contains(out, "in use") {
		t.Errorf("rename of a network in use: %s", out)
	}

	requireNetworkAt(t, d, n2, n3)
	out = lxc.must("network", "list-leases", n2, "--format", "csv")
	if !strings.Contains(out, "c1,") || !strings.Contains(out, ","+addr+",STATIC") {
		t.Fatalf("list-leases lacks c1's reservation %s:\n%s", addr, out)
	}

	if strings.Count(out, addr) != 1 {
		t.Errorf("c1's lease is listed twice (the dynamic copy of a reservation):\n%s", out)
	}

	lxc.fails("network", "list-leases", "nosuchnet")

	// A crash after the database commit: the restarted daemon finishes the move.
	lxc.must("delete", "-f", "c1")
	d.kill(syscall.SIGTERM)
	ctx := context.Background()
	store, err := db.Open(ctx, d.dir)
	if err != nil {
		t.Fatal(err)
	}

	err = store.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error { return tx.RenameNetwork(ctx, n2, n3) })
	_ = store.Close()
	if err != nil {
		t.Fatal(err)
	}

	journal, _ := json.Marshal(map[string]string{"from": n2, "to": n3})
	err = os.WriteFile(filepath.Join(d.dir, "networks", ".rename.json"), journal, 0o600)
	if err != nil {
		t.Fatal(err)
	}

	d.start()
	_, err = os.Stat(filepath.Join(d.dir, "networks", ".rename.json"))
	if err == nil {
		t.Error("rename journal left after recovery")
	}

	// The old dnsmasq kept running across the daemon stop: the recovered rename replaced it.
	deadline := time.Now().Add(5 * time.Second)
	for ip.LinkExists(n2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	requireNetworkAt(t, d, n3, n2)
}
