package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Issue 15, item 3: lxc copy and lxc move of a container between two berthd with LXD's
// migration API (pull, push and relay), the stock lxc driving both.

// migrationFixture is two berthd reachable over HTTPS on loopback, an lxc that has both
// as remotes A and B, and on A a stopped container c1 with two snapshots and 100 MiB of
// random data, whose checksums (and a file owned by 1000:1001) are recorded.
type migrationFixture struct {
	a, b *daemon
	lxc  *lxcTool
	sums string
}

const migrateSums = "sha256sum /root/big /home/u/owned /etc/hostname; stat -c '%u:%g %a %n' /home/u/owned /home/u"

func newMigrationFixture(t *testing.T) *migrationFixture {
	f := &migrationFixture{a: startDaemon(t), b: startDaemon(t)}
	f.a.listenHTTPS()
	f.b.listenHTTPS()
	f.lxc = newLXC(t, "")
	f.lxc.must("remote", "add", "A", f.a.trustToken("cli"))
	f.lxc.must("remote", "add", "B", f.b.trustToken("cli"))

	f.a.berth("launch", "debian/12", "c1")
	if st := f.a.waitRunning("c1"); st != "running" {
		t.Fatalf("c1 on A: systemd is %q", st)
	}

	f.a.berth("stop", "c1")
	f.a.berth("snapshot", "c1", "snap0")
	f.a.berth("start", "c1")
	f.a.waitRunning("c1")
	out, err := f.a.inside("c1", "sh", "-c", "mkdir -p /home/u && echo owned > /home/u/owned && chown 1000:1001 /home/u/owned /home/u && chmod 0750 /home/u")
	if err != nil {
		t.Fatalf("writing c1: %v %s", err, out)
	}

	f.a.berth("stop", "c1")
	f.a.berth("snapshot", "c1", "snap1")
	f.a.berth("start", "c1")
	f.a.waitRunning("c1")
	out, err = f.a.inside("c1", "sh", "-c", "head -c 104857600 /dev/urandom > /root/big && sync")
	if err != nil {
		t.Fatalf("writing c1: %v %s", err, out)
	}

	f.sums = f.insideSums(t, f.a, "c1")
	f.a.berth("stop", "c1")
	return f
}

// insideSums boots name on d if it is stopped, and returns the checksums migrateSums
// prints inside it.
func (f *migrationFixture) insideSums(t *testing.T, d *daemon, name string) string {
	t.Helper()
	out, err := d.inside(name, "sh", "-c", migrateSums)
	if err != nil {
		t.Fatalf("checksums in %s: %v %s", name, err, out)
	}

	return out
}

// instanceOf is an instance's record on d (404 gives a zero Instance and the status).
func instanceOf(t *testing.T, d *daemon, name string) (int, api.Instance) {
	t.Helper()
	code, env := d.raw("GET", "/1.0/instances/"+name, nil)
	var inst api.Instance
	_ = json.Unmarshal(env.Metadata, &inst)
	return code, inst
}

func snapshotNames(t *testing.T, d *daemon, name string) []string {
	t.Helper()
	code, env := d.raw("GET", "/1.0/instances/"+name+"/snapshots?recursion=1", nil)
	if code != http.StatusOK {
		t.Fatalf("snapshots of %s: %d %s", name, code, env.Error)
	}

	var snaps []api.InstanceSnapshot
	_ = json.Unmarshal(env.Metadata, &snaps)
	names := []string{}
	for _, s := range snaps {
		names = append(names, s.Name)
	}

	return names
}

// checkArrived checks that name arrived on d whole: its snapshots, and once booted,
// its data and owners as on the source.
func (f *migrationFixture) checkArrived(t *testing.T, d *daemon, name string) api.Instance {
	t.Helper()
	if got := strings.Join(snapshotNames(t, d, name), ","); got != "snap0,snap1" {
		t.Errorf("snapshots of %s: %q, want snap0,snap1", name, got)
	}

	d.berth("start", name)
	if st := d.waitRunning(name); st != "running" && st != "degraded" {
		t.Fatalf("%s after the migration: systemd is %q", name, st)
	}

	if got := f.insideSums(t, d, name); got != f.sums {
		t.Errorf("%s after the migration:\n%s\nwant\n%s", name, got, f.sums)
	}

	_, inst := instanceOf(t, d, name)
	d.berth("stop", name)
	return inst
}

func TestMigrateCopyMove(t *testing.T) {
	f := newMigrationFixture(t)
	_, src := instanceOf(t, f.a, "c1")

	start := time.Now()
	f.lxc.must("copy", "A:c1", "B:c1")
	took := time.Since(start)
	t.Logf("lxc copy A:c1 B:c1 (pull, 100 MiB + 3 trees): %v", took)

	c := f.checkArrived(t, f.b, "c1")
	if c.Config["volatile.uuid"] == "" || c.Config["volatile.uuid"] == src.Config["volatile.uuid"] {
		t.Errorf("copy's uuid %q, source's %q: a copy gets its own", c.Config["volatile.uuid"], src.Config["volatile.uuid"])
	}

	if c.Config["volatile.eth0.hwaddr"] == src.Config["volatile.eth0.hwaddr"] {
		t.Errorf("copy's MAC %q is the source's", c.Config["volatile.eth0.hwaddr"])
	}

	// Move it back: B keeps nothing, A gets c1's identity under the new name.
	f.lxc.must("move", "B:c1", "A:c2")
	if code, _ := instanceOf(t, f.b, "c1"); code != http.StatusNotFound {
		t.Errorf("B:c1 after the move: %d, want 404", code)
	}

	m := f.checkArrived(t, f.a, "c2")
	for _, k := range []string{"volatile.uuid", "volatile.eth0.hwaddr"} {
		if m.Config[k] != c.Config[k] {
			t.Errorf("moved %s %q, was %q: a move keeps it", k, m.Config[k], c.Config[k])
		}
	}
}
