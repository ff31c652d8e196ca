package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestClusterMove moves instances between the members of a three-member cluster with
// the stock lxc 5.0.2 (lxc move --target, lxc cluster evacuate/restore): a stopped
// container goes whole (snapshot, a file written inside, uuid and MAC address) and is
// listed exactly once at every moment; it boots on its new member and answers exec
// through another one; a running one is refused; unknown and offline members are
// refused with nothing changed; a move whose target is killed mid-transfer leaves the
// instance whole on its source and the target clean once restarted; evacuation moves a
// running container away and starts it there, and restore brings it back and starts it.
func TestClusterMove(t *testing.T) {
	parallel(t)
	c := newFormedCluster(t, 3, 60*time.Second)
	// Offline is noticed sooner (the minimum), for the offline target below.
	c.lxc.must("config", "set", "m1:", "cluster.offline_threshold", "10")

	if !c.run(t, "a stopped container moves whole with lxc move --target", func(t *testing.T) {
		if loc := c.launch("launch", 1, 1, "mv1"); loc != "m1" {
			t.Fatalf("mv1 launched on %q", loc)
		}

		c.lxc.must("exec", "m1:mv1", "--", "sh", "-c", "echo before-snapshot > /root/kept")
		c.lxc.must("snapshot", "m1:mv1", "s1")
		c.lxc.must("exec", "m1:mv1", "--", "sh", "-c", "echo after-snapshot > /root/kept && sync")
		before := c.instance(1, "mv1")
		c.lxc.must("stop", "m1:mv1")

		// Listed exactly once through m2 all along the move (one row changes member).
		stop := make(chan struct{})
		var seen, bad atomic.Int32
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}

				code, env, err := c.req(2, "GET", "/1.0/instances", nil, 5*time.Second)
				if err != nil || code != http.StatusOK {
					continue
				}

				n := strings.Count(string(env.Metadata), `"/1.0/instances/mv1"`)
				seen.Add(1)
				if n != 1 {
					bad.Add(1)
				}
			}
		}()

		t0 := time.Now()
		c.lxc.must("move", "m2:mv1", "--target", "m3") // through a member that is neither
		took := time.Since(t0)
		close(stop)
		wg.Wait()
		t.Logf("stopped container moved m1 -> m3 in %s; listed %d times meanwhile", took.Round(time.Millisecond), seen.Load())
		if bad.Load() > 0 {
			t.Errorf("mv1 was listed other than once in %d of %d lists during the move", bad.Load(), seen.Load())
		}

		if loc := c.location(1, "mv1"); loc != "m3" {
			t.Fatalf("mv1 is on %q after the move, want m3", loc)
		}

		after := c.instance(2, "mv1")
		for _, k := range []string{"volatile.uuid", "volatile.eth0.hwaddr"} {
			if after.Config[k] == "" || after.Config[k] != before.Config[k] {
				t.Errorf("%s: %q before the move, %q after", k, before.Config[k], after.Config[k])
			}
		}

		if after.Config["volatile.idmap.base"] == "" {
			t.Error("the moved instance has no id range on its new member")
		}

		for _, p := range []string{"instances/mv1", "storage-pools/default/containers/mv1"} {
			if _, err := os.Lstat(filepath.Join(c.member(1).dir, p)); err == nil {
				t.Errorf("m1 keeps %s after the move", p)
			}
		}

		out := c.lxc.must("info", "m1:mv1")
		if !strings.Contains(out, "s1") {
			t.Errorf("mv1's snapshot s1 is missing after the move:\n%s", out)
		}

		c.lxc.must("start", "m1:mv1")
		if st := c.member(3).waitRunning("mv1"); st != "running" && st != "degraded" {
			t.Errorf("mv1 on m3: systemd says %q", st)
		}

		got := c.lxc.must("exec", "m2:mv1", "--", "cat", "/root/kept")
		if strings.TrimSpace(got) != "after-snapshot" {
			t.Errorf("/root/kept after the move reads %q", got)
		}

		// The snapshot came too: restoring it brings the older file back.
		c.lxc.must("stop", "m1:mv1", "--force")
		c.lxc.must("restore", "m1:mv1", "s1")
		c.lxc.must("start", "m1:mv1")
		got = c.lxc.must("exec", "m1:mv1", "--", "cat", "/root/kept")
		if strings.TrimSpace(got) != "before-snapshot" {
			t.Errorf("/root/kept after restoring the moved snapshot reads %q", got)
		}
	}) {
		t.FailNow()
	}

	c.run(t, "a running container is refused", func(t *testing.T) {
		out, err := c.lxc.run("move", "m1:mv1", "--target", "m2")
		if err == nil || !strings.Contains(out, "running") {
			t.Errorf("moving running mv1: %v %q, want a refusal naming it running", err, out)
		}

		if loc := c.location(1, "mv1"); loc != "m3" {
			t.Errorf("mv1 is on %q after the refused move", loc)
		}
	})

	c.run(t, "rename and move with lxc move c1 c2 --target", func(t *testing.T) {
		c.lxc.must("stop", "m1:mv1", "--force")
		c.lxc.must("move", "m1:mv1", "m1:mvr", "--target", "m1")
		if loc := c.location(2, "mvr"); loc != "m1" {
			t.Errorf("mvr is on %q, want m1", loc)
		}

		code, _, _ := c.req(2, "GET", "/1.0/instances/mv1", nil, 5*time.Second)
		if code != http.StatusNotFound {
			t.Errorf("mv1 still answers %d after its rename and move", code)
		}

		c.renamed("mv1", "mvr")
		if left := memberLeftovers(c.member(3).dir, "mv1"); len(left) > 0 {
			t.Errorf("m3 keeps %v after mv1 moved away", left)
		}
	})

	c.run(t, "an unknown member is refused", func(t *testing.T) {
		out, err := c.lxc.run("move", "m1:mvr", "--target", "m9")
		if err == nil || !strings.Contains(out, "m9") {
			t.Errorf("move to m9: %v %q, want an error naming m9", err, out)
		}

		if loc := c.location(1, "mvr"); loc != "m1" {
			t.Errorf("mvr is on %q after the refused move", loc)
		}
	})

	c.run(t, "a move whose target dies mid-transfer changes nothing", func(t *testing.T) {
		c.launch("init", 1, 1, "mk")
		c.lxc.must("start", "m1:mk")
		c.lxc.must("exec", "m1:mk", "--", "sh", "-c", "echo survives > /root/kept && sync")
		c.lxc.must("stop", "m1:mk")

		marker := filepath.Join(c.member(2).dir, "instances", "mk", ".moving-member")
		done := make(chan error, 1)
		var out string
		go func() {
			var err error
			out, err = c.lxc.run("move", "m1:mk", "--target", "m2")
			done <- err
		}()

		err := testutil.WaitFor(60*time.Second, 10*time.Millisecond, func() (bool, error) {
			_, err := os.Lstat(marker)
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("the target never started receiving mk: %v", err)
		}

		c.kill(2, syscall.SIGKILL)
		err = <-done
		if err == nil {
			t.Fatalf("the move succeeded although its target was killed mid-transfer:\n%s", out)
		}

		t.Logf("move with its target killed: %v %s", err, strings.TrimSpace(out))
		if loc := c.location(1, "mk"); loc != "m1" {
			t.Errorf("mk is on %q after the failed move, want m1", loc)
		}

		if _, err := os.Lstat(filepath.Join(c.member(1).dir, "instances", "mk", ".moving-member")); err == nil {
			t.Error("the source keeps the move's marker after the failure")
		}

		// While m2 is down: an offline target is refused, nothing changes.
		err = testutil.WaitFor(30*time.Second, 500*time.Millisecond, func() (bool, error) {
			return c.memberStatus(1, "m2") == "Offline", nil
		})
		if err != nil {
			t.Errorf("m2 never shows offline: %v", err)
		} else {
			out, err := c.lxc.run("move", "m1:mk", "--target", "m2")
			if err == nil || !strings.Contains(out, "m2") {
				t.Errorf("move to offline m2: %v %q, want an error naming m2", err, out)
			}
		}

		c.lxc.must("start", "m1:mk")
		got := c.lxc.must("exec", "m1:mk", "--", "cat", "/root/kept")
		if strings.TrimSpace(got) != "survives" {
			t.Errorf("mk's file after the failed move reads %q", got)
		}

		err = c.restart(2)
		if err != nil {
			t.Fatalf("restarting m2: %v", err)
		}

		c.waitClustered(2)
		if left := memberLeftovers(c.member(2).dir, "mk"); len(left) > 0 {
			t.Errorf("m2 keeps %v of the interrupted move after its restart", left)
		}

		c.waitVoters(3, 60*time.Second)
	})

	c.run(t, "evacuate moves a running container away and restore brings it back", func(t *testing.T) {
		// mvr (running) goes; mk stays, stopped, as its cluster.evacuate asks.
		c.lxc.must("start", "m1:mvr")
		c.lxc.must("config", "set", "m1:mk", "cluster.evacuate", "stop")
		c.lxc.must("cluster", "evacuate", "m2:m1", "--force")
		if st := c.memberStatus(2, "m1"); st != "Evacuated" {
			t.Errorf("m1 is %q after evacuate", st)
		}

		loc := c.location(2, "mvr")
		if loc == "m1" {
			t.Fatal("mvr stayed on evacuated m1")
		}

		out := c.lxc.must("list", "m2:mvr", "--format", "csv", "-c", "ns")
		if strings.TrimSpace(out) != "mvr,RUNNING" {
			t.Errorf("mvr on %s after evacuation: %q, want running", loc, out)
		}

		if got := c.instance(2, "mvr").Config["volatile.evacuate.origin"]; got != "m1" {
			t.Errorf("mvr's volatile.evacuate.origin is %q", got)
		}

		out = c.lxc.must("list", "m2:mk", "--format", "csv", "-c", "nsL")
		if strings.TrimSpace(out) != "mk,STOPPED,m1" {
			t.Errorf("mk (cluster.evacuate=stop) after evacuation: %q, want stopped on m1", out)
		}

		c.lxc.must("cluster", "restore", "m2:m1", "--force")
		out = c.lxc.must("list", "m3:mvr", "--format", "csv", "-c", "nsL")
		if strings.TrimSpace(out) != "mvr,RUNNING,m1" {
			t.Errorf("mvr after restore: %q, want running on m1", out)
		}

		if _, ok := c.instance(2, "mvr").Config["volatile.evacuate.origin"]; ok {
			t.Error("mvr keeps volatile.evacuate.origin after restore")
		}

		got := c.lxc.must("exec", "m3:mvr", "--", "cat", "/root/kept")
		if strings.TrimSpace(got) != "before-snapshot" {
			t.Errorf("mvr's file after evacuation and restore reads %q", got)
		}
	})

	c.checkAcked(1, 2, 3)
}

// renamed changes the name of an acknowledged instance.
func (c *cluster) renamed(from, to string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.acked {
		if c.acked[i].kind == "instance" && c.acked[i].name == from {
			c.acked[i].name = to
		}
	}
}

// instance is GET /1.0/instances/NAME through member via.
func (c *cluster) instance(via int, name string) api.Instance {
	c.t.Helper()
	code, env, err := c.req(via, "GET", "/1.0/instances/"+name, nil, 10*time.Second)
	if err != nil || code != http.StatusOK {
		c.t.Fatalf("GET /1.0/instances/%s through m%d: %d %v %s", name, via, code, err, env.Error)
	}

	var inst api.Instance
	err = json.Unmarshal(env.Metadata, &inst)
	if err != nil {
		c.t.Fatal(err)
	}

	return inst
}

// memberLeftovers lists what a member's state directory dir holds of instance name: its
// directory and its storage on the default pool.
func memberLeftovers(dir, name string) []string {
	var out []string
	for _, p := range []string{filepath.Join("instances", name), filepath.Join("storage-pools", "default", "containers", name)} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			out = append(out, p)
		}
	}

	if m, _ := filepath.Glob(filepath.Join(dir, "storage-pools", "default", "*", ".tmp-*")); len(m) > 0 {
		out = append(out, fmt.Sprint(m))
	}

	return out
}
