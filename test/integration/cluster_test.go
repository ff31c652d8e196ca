package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// TestCluster drives a three-member cluster, each member a berthd in a network namespace
// of its own, through the stock lxc 5.0.2 in a hub namespace: enabling a populated host,
// joining with tokens (a reused, a revoked and an expired token refused), placement with
// and without --target, a cluster-wide list with LOCATION, exec and file push across
// members, leader failures (kill -9, SIGTERM, an nftables blackhole) with the time until
// writes resume, evacuate and restore, quorum loss, and at the end a check that every
// object the API acknowledged creating still exists, through every member.
func TestCluster(t *testing.T) {
	c := newCluster(t, 3)
	m1 := c.member(1)

	// A host with containers, images and profiles before it becomes a cluster.
	local := newLXC(t, m1.dir)
	_, _ = local.run("list") // a fresh LXD_CONF prints a welcome hint first
	local.must("profile", "create", "pre-prof")
	local.must("profile", "set", "pre-prof", "user.kept", "yes")
	c.ack("profile", "pre-prof")
	local.must("launch", "debian/12", "pre1")
	c.ack("instance", "pre1")
	local.must("init", "debian/12", "pre2")
	c.ack("instance", "pre2")
	fp := aliasTarget(t, m1, "debian/12")
	prePID := m1.initPID("pre1")

	if !c.run(t, "enable keeps a populated host", func(t *testing.T) {
		c.enable()
		out := c.lxc.must("profile", "get", "m1:pre-prof", "user.kept")
		if strings.TrimSpace(out) != "yes" {
			t.Errorf("profile pre-prof lost its config: %q", out)
		}

		if got := aliasTarget(t, m1, "debian/12"); got != fp {
			t.Errorf("alias debian/12 points at %q after enable, was %q", got, fp)
		}

		if pid := m1.initPID("pre1"); pid != prePID {
			t.Errorf("pre1's init is %d after enable, was %d: the container was restarted", pid, prePID)
		}

		for _, n := range []string{"pre1", "pre2"} {
			if loc := c.location(1, n); loc != "m1" {
				t.Errorf("%s is on %q after enable, want m1", n, loc)
			}
		}

		bak, err := os.Stat(filepath.Join(m1.dir, "database", "berth.db.pre-cluster"))
		if err != nil || bak.Mode().Perm() != 0o400 {
			t.Errorf("backup of the single-host database: %v %v (want mode 0400)", err, bak)
		}
	}) {
		t.FailNow()
	}

	if !c.run(t, "join with tokens", func(t *testing.T) {
		tok2 := c.token("m2")
		err := c.join(2, tok2)
		if err != nil {
			t.Fatalf("joining m2: %v", err)
		}

		// A token is single-use.
		err = c.join(3, tok2)
		if err == nil {
			t.Fatal("m3 joined with m2's token, already used")
		}

		t.Logf("reused token refused: %v", err)
		c.notMember(3)

		// Listed until revoked; a revoked token is refused.
		tok3 := c.token("m3")
		if out := c.lxc.must("cluster", "list-tokens", "m1:", "--format", "csv"); !strings.Contains(out, "m3,") {
			t.Errorf("lxc cluster list-tokens lacks m3:\n%s", out)
		}

		c.lxc.must("cluster", "revoke-token", "m1:m3")
		if out := c.lxc.must("cluster", "list-tokens", "m1:", "--format", "csv"); strings.Contains(out, "m3,") {
			t.Errorf("lxc cluster list-tokens still lists m3 after revoke-token:\n%s", out)
		}

		err = c.join(3, tok3)
		if err == nil {
			t.Fatal("m3 joined with a revoked token")
		}

		t.Logf("revoked token refused: %v", err)
		c.notMember(3)

		// An expired token is refused.
		c.lxc.must("config", "set", "m1:", "cluster.join_token_expiry", "1S")
		tok3 = c.token("m3")
		time.Sleep(2 * time.Second)
		err = c.join(3, tok3)
		if err == nil {
			t.Fatal("m3 joined with an expired token")
		}

		t.Logf("expired token refused: %v", err)
		c.notMember(3)
		c.lxc.must("config", "unset", "m1:", "cluster.join_token_expiry")
		_, _ = c.lxc.run("cluster", "revoke-token", "m1:m3")

		err = c.join(3, c.token("m3"))
		if err != nil {
			t.Fatalf("joining m3: %v", err)
		}

		c.addRemotes()
		c.waitVoters(3, 30*time.Second)

		var ms []api.ClusterMember
		out := c.lxc.must("cluster", "list", "m3:", "--format", "json")
		err = json.Unmarshal([]byte(out), &ms)
		if err != nil {
			t.Fatalf("lxc cluster list --format json: %v\n%s", err, out)
		}

		for i := 1; i <= 3; i++ {
			if !slices.ContainsFunc(ms, func(m api.ClusterMember) bool {
				return m.ServerName == memberName(i) && m.Status == "Online" && m.URL == "https://"+c.net.APIAddr(i)
			}) {
				t.Errorf("lxc cluster list lacks m%d online at %s: %+v", i, c.net.APIAddr(i), ms)
			}
		}
	}) {
		t.FailNow()
	}

	c.run(t, "launch with and without --target", func(t *testing.T) {
		if loc := c.launch("launch", 1, 2, "c2"); loc != "m2" {
			t.Errorf("c2 launched with --target m2 through m1 is on %q", loc)
		}

		if loc := c.launch("launch", 2, 3, "c3"); loc != "m3" {
			t.Errorf("c3 launched with --target m3 through m2 is on %q", loc)
		}

		// m1 holds pre1 and pre2, m2 and m3 one each: the fewest instances win.
		if loc := c.launch("init", 3, 0, "cauto"); loc != "m2" && loc != "m3" {
			t.Errorf("cauto placed on %q, want the least loaded (m2 or m3)", loc)
		}
	})

	c.run(t, "lxc list through m3 shows every member's instances", func(t *testing.T) {
		out := c.lxc.must("list", "m3:")
		if !strings.Contains(out, "LOCATION") {
			t.Errorf("lxc list has no LOCATION column:\n%s", out)
		}

		out = c.lxc.must("list", "m3:", "--format", "csv", "-c", "nsL")
		for _, want := range []string{"pre1,RUNNING,m1", "pre2,STOPPED,m1", "c2,RUNNING,m2", "c3,RUNNING,m3"} {
			if !strings.Contains(out, want) {
				t.Errorf("lxc list m3: lacks %q:\n%s", want, out)
			}
		}
	})

	c.run(t, "exec and file push into m2's container through m1", func(t *testing.T) {
		out := c.lxc.must("exec", "m1:c2", "--", "cat", "/etc/hostname")
		if strings.TrimSpace(out) != "c2" {
			t.Errorf("lxc exec m1:c2 cat /etc/hostname: %q", out)
		}

		src := filepath.Join(t.TempDir(), "pushed")
		payload := fmt.Sprintf("pushed through m1 at %d\n", time.Now().UnixNano())
		err := os.WriteFile(src, []byte(payload), 0o644)
		if err != nil {
			t.Fatal(err)
		}

		c.lxc.must("file", "push", src, "m1:c2/root/pushed")
		// Read back from m2's own view of the container (its local init pid).
		got, err := c.member(2).inside("c2", "cat", "/root/pushed")
		if err != nil || got != payload {
			t.Errorf("file pushed through m1 reads %q (%v) inside c2 on m2, want %q", got, err, payload)
		}
	})

	c.run(t, "evacuate and restore", func(t *testing.T) {
		// Stop mode here (TestClusterMove covers moving away and back): each of m2's
		// instances says so, as lxc 5.0.2's evacuate sends no mode.
		out := c.lxc.must("list", "m1:", "--format", "csv", "-c", "nL")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if name, ok := strings.CutSuffix(line, ",m2"); ok {
				c.lxc.must("config", "set", "m1:"+name, "cluster.evacuate", "stop")
			}
		}

		c.lxc.must("cluster", "evacuate", "m1:m2", "--force")
		if st := c.memberStatus(1, "m2"); st != "Evacuated" {
			t.Errorf("m2 is %q after evacuate", st)
		}

		// Nothing runs on m2 any more: c2 stopped there.
		out = c.lxc.must("list", "m1:", "--format", "csv", "-c", "nsL")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasSuffix(line, ",RUNNING,m2") {
				t.Errorf("still running on evacuated m2: %s", line)
			}
		}

		if loc := c.launch("init", 1, 0, "cevac"); loc == "m2" {
			t.Error("cevac placed on evacuated m2")
		}

		c.lxc.must("cluster", "restore", "m1:m2", "--force")
		if st := c.memberStatus(1, "m2"); st != "Online" {
			t.Errorf("m2 is %q after restore", st)
		}

		out = c.lxc.must("list", "m1:c2", "--format", "csv", "-c", "nsL")
		if strings.TrimSpace(out) != "c2,RUNNING,m2" {
			t.Errorf("c2 after restore: %q, want running on m2", out)
		}

		// The failovers below are timed on a quiet cluster: c2's systemd, started by the
		// restore, takes both CPUs of a small machine for about a second, and a raft
		// election starved of them took 1.05 s where it takes 0.4-0.7 s.
		if s := c.member(2).waitRunning("c2"); s != "running" && s != "degraded" {
			t.Errorf("c2 after restore: systemd says %q", s)
		}
	})

	c.run(t, "kill -9 the leader", func(t *testing.T) {
		l := c.waitLeader(10*time.Second, 0, 1, 2, 3)
		others := c.others(l)
		t0 := time.Now()
		c.kill(l, syscall.SIGKILL)
		took, err := c.firstWrite(t0, others, "fo-kill", 10*time.Second)
		if err != nil {
			t.Fatalf("no write through m%v within 10 s of killing leader m%d: %v", others, l, err)
		}

		t.Logf("leader m%d killed: first write accepted after %s", l, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("writes resumed %s after the leader was killed, want within 1 s", took.Round(time.Millisecond))
		}

		// Writes made while it is down, then it comes back and catches up.
		for k := 0; k < 3; k++ {
			err := c.createProfile(others[k%2], fmt.Sprintf("while-down-%d", k), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
		}

		err = c.restart(l)
		if err != nil {
			t.Fatal(err)
		}

		t0 = time.Now()
		err = c.waitProfile(l, "while-down-2", 20*time.Second)
		if err != nil {
			t.Fatalf("restarted m%d does not see the writes made while it was down: %v", l, err)
		}

		t.Logf("restarted m%d caught up %s after its start", l, time.Since(t0).Round(time.Millisecond))
		c.waitVoters(3, 30*time.Second)
	})

	c.run(t, "SIGTERM of the leader hands over", func(t *testing.T) {
		l := c.waitLeader(10*time.Second, 0, 1, 2, 3)
		others := c.others(l)
		t0 := time.Now()
		c.kill(l, syscall.SIGTERM)
		took, err := c.firstWrite(t0, others, "fo-term", 10*time.Second)
		if err != nil {
			t.Fatalf("no write within 10 s of stopping leader m%d: %v", l, err)
		}

		t.Logf("leader m%d stopped (SIGTERM, %s until it exited): first write accepted %s after the signal", l,
			c.stopTook.Round(time.Millisecond), took.Round(time.Millisecond))
		// The write starts once berthd has exited; a handover makes it succeed at once.
		if took-c.stopTook > time.Second {
			t.Errorf("writes resumed %s after leader m%d exited, want at once after a handover", (took - c.stopTook).Round(time.Millisecond), l)
		}

		err = c.restart(l)
		if err != nil {
			t.Fatal(err)
		}

		c.waitVoters(3, 30*time.Second)
	})

	c.run(t, "blackholed leader", func(t *testing.T) {
		l := c.waitLeader(10*time.Second, 0, 1, 2, 3)
		others := c.others(l)
		t0 := time.Now()
		err := c.net.DropRaft(l)
		if err != nil {
			t.Fatal(err)
		}

		undropped := false
		defer func() {
			if !undropped {
				_ = c.net.UndropRaft(l)
			}
		}()

		took, err := c.firstWrite(t0, others, "fo-drop", 20*time.Second)
		if err != nil {
			t.Fatalf("no write through m%v within 20 s of blackholing leader m%d: %v", others, l, err)
		}

		t.Logf("leader m%d blackholed: first write accepted after %s", l, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("writes resumed %s after the leader's raft traffic was dropped, want within 5 s (deadlines, not TCP timeouts)", took.Round(time.Millisecond))
		}

		newLeader := c.waitLeader(10*time.Second, l, others...)

		// The isolated member cannot write on its own (no split brain).
		t1 := time.Now()
		err = c.createProfile(l, "isolated-write", 10*time.Second)
		if err == nil {
			t.Errorf("a write through the isolated m%d succeeded", l)
		} else {
			t.Logf("write through isolated m%d refused after %s: %v", l, time.Since(t1).Round(time.Millisecond), err)
		}

		err = c.createProfile(newLeader, "after-drop", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}

		err = c.net.UndropRaft(l)
		if err != nil {
			t.Fatal(err)
		}

		undropped = true
		t0 = time.Now()
		err = c.waitProfile(l, "after-drop", 30*time.Second)
		if err != nil {
			t.Fatalf("m%d does not catch up after the rule is removed: %v", l, err)
		}

		if got := c.waitLeader(30*time.Second, 0, 1, 2, 3); got == l {
			t.Errorf("m%d took leadership back; want it to rejoin as a follower of m%d", l, newLeader)
		}

		t.Logf("m%d rejoined as follower %s after the rule was removed", l, time.Since(t0).Round(time.Millisecond))
		c.waitVoters(3, 30*time.Second)
	})

	c.run(t, "kill two of three", func(t *testing.T) {
		survivor := 3
		for _, i := range []int{1, 2} {
			c.kill(i, syscall.SIGKILL)
		}

		t0 := time.Now()
		err := c.createProfile(survivor, "no-quorum", 10*time.Second)
		took := time.Since(t0)
		if err == nil {
			t.Fatal("a write without quorum succeeded")
		}

		t.Logf("write without quorum refused after %s: %v", took.Round(time.Millisecond), err)
		if took > time.Second {
			t.Errorf("a write without quorum took %s to fail, want within 1 s", took.Round(time.Millisecond))
		}

		msg := strings.ToLower(err.Error())
		if !strings.Contains(msg, "quorum") && !strings.Contains(msg, "leader") && !strings.Contains(msg, "unavailable") {
			t.Errorf("error without quorum does not say so: %v", err)
		}

		// The stock client gets an error, not a hang.
		t0 = time.Now()
		out, err := c.lxcTimed(20*time.Second, "list", "m3:")
		took = time.Since(t0)
		if err == nil {
			t.Errorf("lxc list without quorum succeeded:\n%s", out)
		}

		t.Logf("lxc list without quorum failed after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
		if took > 3*time.Second {
			t.Errorf("lxc list without quorum took %s to fail", took.Round(time.Millisecond))
		}

		for _, i := range []int{1, 2} {
			err := c.restart(i)
			if err != nil {
				t.Fatal(err)
			}
		}

		c.waitVoters(3, 60*time.Second)
	})

	c.checkAcked(1, 2, 3)
}

// run runs f as a subtest on the shared cluster: the cluster's helpers report to the
// subtest while it runs.
func (c *cluster) run(t *testing.T, name string, f func(t *testing.T)) bool {
	return t.Run(name, func(st *testing.T) {
		c.setT(st)
		defer c.setT(t)
		f(st)
	})
}

func (c *cluster) setT(t *testing.T) {
	c.t = t
	c.lxc.t = t
	for _, d := range c.m {
		d.t = t
	}
}

// others is every member but i.
func (c *cluster) others(i int) []int {
	o := []int{}
	for j := 1; j <= len(c.m); j++ {
		if j != i {
			o = append(o, j)
		}
	}

	return o
}

// firstWrite creates profiles prefix-N through the members in via, in turn, each
// attempt with a 500 ms deadline, until one is acknowledged; it returns the time from
// t0 to that acknowledgement.
func (c *cluster) firstWrite(t0 time.Time, via []int, prefix string, timeout time.Duration) (time.Duration, error) {
	var last error
	for k := 0; time.Since(t0) < timeout; k++ {
		err := c.createProfile(via[k%len(via)], fmt.Sprintf("%s-%d", prefix, k), 500*time.Millisecond)
		if err == nil {
			return time.Since(t0), nil
		}

		last = err
		time.Sleep(10 * time.Millisecond)
	}

	return 0, last
}

// waitProfile waits until member i has profile name.
func (c *cluster) waitProfile(i int, name string, timeout time.Duration) error {
	var last string
	t0 := time.Now()
	for time.Since(t0) < timeout {
		code, env, err := c.req(i, "GET", "/1.0/profiles/"+name, nil, 2*time.Second)
		if err == nil && code == http.StatusOK {
			return nil
		}

		last = fmt.Sprintf("%d %v %s", code, err, env.Error)
		time.Sleep(50 * time.Millisecond)
	}

	return fmt.Errorf("profile %s not on m%d after %s: %s", name, i, timeout, last)
}

// notMember checks that member i is not in the cluster and still answers standalone.
func (c *cluster) notMember(i int) {
	c.t.Helper()
	ms, err := c.members(1)
	if err != nil {
		c.t.Fatal(err)
	}

	if slices.ContainsFunc(ms, func(m api.ClusterMember) bool { return m.ServerName == memberName(i) }) {
		c.t.Errorf("m%d is listed as a member after a refused join", i)
	}

	code, env, err := c.req(i, "GET", "/1.0/cluster", nil, 5*time.Second)
	var cl api.Cluster
	_ = json.Unmarshal(env.Metadata, &cl)
	if err != nil || code != http.StatusOK || cl.Enabled {
		c.t.Errorf("m%d after a refused join: %d %v enabled=%v", i, code, err, cl.Enabled)
	}
}

// memberStatus is member name's status as member via lists it (lxc cluster list).
func (c *cluster) memberStatus(via int, name string) string {
	c.t.Helper()
	var ms []api.ClusterMember
	out := c.lxc.must("cluster", "list", memberName(via)+":", "--format", "json")
	err := json.Unmarshal([]byte(out), &ms)
	if err != nil {
		c.t.Fatalf("lxc cluster list --format json: %v\n%s", err, out)
	}

	for _, m := range ms {
		if m.ServerName == name {
			return m.Status
		}
	}

	return ""
}

// lxcTimed runs lxc in the hub with a deadline (a hang is a failure, not a stuck test).
func (c *cluster) lxcTimed(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + c.lxc.netns, "--", c.lxc.bin}, args...)...)
	cmd.Env = c.lxc.env
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
