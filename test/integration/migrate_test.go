package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
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
	parallel(t)
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

// leftovers lists what a failed migration could leave on d: the instance's storage and
// snapshots, pool images made for it (backup-*, .tmp-*), rsync jails.
func leftovers(d *daemon, name string) []string {
	pool := filepath.Join(d.dir, "storage-pools", "default")
	var out []string
	for _, pattern := range []string{
		filepath.Join(pool, "containers", name),
		filepath.Join(pool, "containers-snapshots", name),
		filepath.Join(pool, "images", "backup-*"),
		filepath.Join(pool, "images", ".tmp-*"),
		filepath.Join(d.dir, "migrate", "*"),
		filepath.Join(d.dir, "instances", name),
	} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}

	return out
}

// TestMigrateModes copies in push and relay mode, refuses a running instance unless
// --stateless, and survives a source killed half-way: the target is left with nothing,
// the source whole.
func TestMigrateModes(t *testing.T) {
	parallel(t)
	f := newMigrationFixture(t)

	for _, mode := range []string{"push", "relay"} {
		t.Run(mode, func(t *testing.T) {
			name := "c-" + mode
			f.lxc.must("copy", "A:c1", "B:"+name, "--mode", mode)
			f.checkArrived(t, f.b, name)
		})
	}

	t.Run("berth copy and move", func(t *testing.T) {
		bc := newBerthConf(t)
		bc.ok(t, "remote", "add", "A", f.a.berthToken(t, "berth-cli"))
		bc.ok(t, "remote", "add", "B", f.b.berthToken(t, "berth-cli"))
		bc.ok(t, "copy", "A:c1", "B:bc")
		f.checkArrived(t, f.b, "bc")

		// --start: B starts the copy in the operation that receives it (pull mode).
		bc.ok(t, "copy", "A:c1", "B:bs", "--start", "--instance-only")
		if st := f.b.waitRunning("bs"); st != "running" && st != "degraded" {
			t.Errorf("B:bs after berth copy --start: systemd is %q", st)
		}
		_, moved := instanceOf(t, f.b, "bc")
		bc.ok(t, "move", "B:bc", "A:bm")
		if code, _ := instanceOf(t, f.b, "bc"); code != http.StatusNotFound {
			t.Errorf("B:bc after berth move: %d, want 404", code)
		}

		_, m := instanceOf(t, f.a, "bm")
		if m.Config["volatile.uuid"] != moved.Config["volatile.uuid"] {
			t.Errorf("berth move changed the uuid: %q, was %q", m.Config["volatile.uuid"], moved.Config["volatile.uuid"])
		}

		if got := strings.Join(snapshotNames(t, f.a, "bm"), ","); got != "snap0,snap1" {
			t.Errorf("snapshots after berth move: %q", got)
		}
	})

	t.Run("running", func(t *testing.T) {
		f.a.berth("start", "c1")
		defer f.a.berth("stop", "c1")
		f.a.waitRunning("c1")

		out, err := f.lxc.run("copy", "A:c1", "B:live")
		if err == nil || !strings.Contains(out, "live migration is not supported") {
			t.Fatalf("lxc copy of a running instance: %v %q, want a refusal naming live migration", err, out)
		}

		if code, _ := instanceOf(t, f.b, "live"); code != http.StatusNotFound {
			t.Errorf("B:live after the refusal: %d", code)
		}

		f.lxc.must("copy", "A:c1", "B:live", "--stateless")
		if got := strings.Join(snapshotNames(t, f.b, "live"), ","); got != "snap0,snap1" {
			t.Errorf("stateless copy's snapshots: %q", got)
		}
	})

	t.Run("source killed", func(t *testing.T) {
		before := map[string]bool{}
		for _, p := range leftovers(f.b, "cut") {
			before[p] = true // the other copies' images
		}

		done := make(chan string, 1)
		go func() {
			out, err := f.lxc.run("copy", "A:c1", "B:cut")
			done <- fmt.Sprintf("%v %s", err, out)
		}()

		// Kill A once B receives (a jail exists on B), half-way through.
		deadline := time.Now().Add(60 * time.Second)
		for {
			m, _ := filepath.Glob(filepath.Join(f.b.dir, "migrate", "jail-*"))
			if len(m) > 0 || time.Now().After(deadline) {
				break
			}

			time.Sleep(20 * time.Millisecond)
		}

		time.Sleep(300 * time.Millisecond)
		f.a.kill(syscall.SIGKILL)
		out := <-done
		if strings.HasPrefix(out, "<nil>") {
			t.Fatalf("lxc copy with the source killed succeeded: %s", out)
		}

		// B: nothing of it, in the API or on disk.
		deadline = time.Now().Add(30 * time.Second)
		for {
			code, _ := instanceOf(t, f.b, "cut")
			left := []string{}
			for _, p := range leftovers(f.b, "cut") {
				if !before[p] {
					left = append(left, p)
				}
			}

			if code == http.StatusNotFound && len(left) == 0 {
				break
			}

			if time.Now().After(deadline) {
				t.Fatalf("B after the cut: instance %d, left on disk %v", code, left)
			}

			time.Sleep(100 * time.Millisecond)
		}

		// A, restarted, has c1 whole.
		// Its jails (still mounted when it was killed) are gone once it is back.
		f.a.start()
		if left, _ := filepath.Glob(filepath.Join(f.a.dir, "migrate", "*")); len(left) != 0 {
			t.Errorf("A after its restart keeps %v", left)
		}

		f.checkArrived(t, f.a, "c1")
	})
}
