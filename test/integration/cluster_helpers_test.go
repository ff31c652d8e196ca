package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// Helpers of the cluster suite: berthd members, each in a network namespace of its own
// (testutil.ClusterNet), the stock lxc in the hub namespace with a remote per member,
// bounded requests over each member's unix socket, and a record of everything the API
// acknowledged creating, checked at the end.

// cluster is a set of berthd members m1..mN. Members are started standalone; enable
// and join make them one cluster.
type cluster struct {
	t   *testing.T
	net *testutil.ClusterNet
	m   []*daemon // m[i-1] is member i, named "m<i>"
	lxc *lxcTool  // stock lxc in the hub namespace: remotes m1.. once added

	mu    sync.Mutex
	acked []ackedObject // everything a client was told was created
	logs  []string      // member i-1's log of its earlier runs (before restarts)

	stopTook time.Duration // from the last kill's signal to the member's exit
	enabled  bool          // clustering was enabled on member 1
}

// ackedObject is an object the API acknowledged creating: kind "profile" or "instance".
type ackedObject struct{ kind, name string }

// newFormedCluster is newCluster with member 1 enabled, the others joined with tokens,
// the stock lxc's remotes added and n voters seen within timeout.
func newFormedCluster(t *testing.T, n int, timeout time.Duration) *cluster {
	t.Helper()
	c := newCluster(t, n)
	c.enable()
	for i := 2; i <= n; i++ {
		err := c.join(i, c.token(memberName(i)))
		if err != nil {
			t.Fatalf("joining m%d: %v", i, err)
		}
	}

	c.addRemotes()
	c.waitVoters(min(n, 3), timeout)
	return c
}

// newCluster starts n members, each with a fresh state directory under /tmp, in its own
// namespace, listening on 10.251.0.i:8443. Only member 1 imports the test image: the
// others get it from the cluster when they first need it. Cleanup is registered: every
// member up again, every instance deleted, every member stopped, dirs, cgroups and
// namespaces removed.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	requireSetup(t)
	net := testutil.NewClusterNetT(t, n) // cleaned up after the members (cleanups run last first)
	c := &cluster{t: t, net: net, logs: make([]string, n)}
	t.Cleanup(c.destroy)

	for i := 1; i <= n; i++ {
		dir, err := os.MkdirTemp("/tmp", "bt-")
		if err != nil {
			t.Fatal(err)
		}

		d := &daemon{t: t, dir: dir, netns: net.Path(i)}
		c.m = append(c.m, d)
		d.start()

		code, env := d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.https_address":"`+net.APIAddr(i)+`"}}`))
		if code != http.StatusOK {
			t.Fatalf("m%d: setting core.https_address: %d %s", i, code, env.Error)
		}
	}

	out := c.m[0].berth("image", "import", imagePath, "--alias", "debian/12")
	if !strings.Contains(out, "fingerprint") {
		t.Fatalf("image import said %q", out)
	}

	c.lxc = newLXC(t, "")
	c.lxc.netns = net.Path(0)
	return c
}

// member returns member i (from 1).
func (c *cluster) member(i int) *daemon { return c.m[i-1] }

// name is member i's cluster name.
func memberName(i int) string { return fmt.Sprintf("m%d", i) }

// enable adds remote m1 to the hub's lxc with a trust token and runs `lxc cluster
// enable m1: m1`, then waits until member 1 (re-executed) serves as a cluster.
func (c *cluster) enable() {
	c.t.Helper()
	c.lxc.must("remote", "add", "m1", c.member(1).trustToken("hub"))
	c.enabled = true
	c.lxc.must("cluster", "enable", "m1:", "m1")
	c.waitClustered(1)
}

// addRemotes adds m2..mN to lxc by URL. The client's certificate is trusted cluster
// wide already (it was trusted by m1 before the cluster existed), and every member
// presents the one cluster certificate: the pinned certificates must all be m1's.
func (c *cluster) addRemotes() {
	c.t.Helper()
	pinned, err := os.ReadFile(filepath.Join(c.lxc.conf, "servercerts", "m1.crt"))
	if err != nil {
		c.t.Fatal(err)
	}

	for i := 2; i <= len(c.m); i++ {
		c.lxc.must("remote", "add", memberName(i), "https://"+c.net.APIAddr(i), "--accept-certificate")
		got, err := os.ReadFile(filepath.Join(c.lxc.conf, "servercerts", memberName(i)+".crt"))
		if err != nil {
			c.t.Fatal(err)
		}

		if string(got) != string(pinned) {
			c.t.Errorf("m%d presents another certificate than m1: members must share the cluster certificate", i)
		}
	}
}

// token asks for a join token for name through lxc (`lxc cluster add m1:NAME`).
func (c *cluster) token(name string) string {
	c.t.Helper()
	out := c.lxc.must("cluster", "add", "m1:"+name)
	f := strings.Fields(strings.TrimSpace(out))
	if len(f) == 0 {
		c.t.Fatalf("lxc cluster add %s printed nothing", name)
	}

	return f[len(f)-1]
}

// join has member i redeem token over its unix socket as `lxd init --preseed` does
// (testutil.Join). It returns the refusal, or nil once member i serves as a member of
// the cluster.
func (c *cluster) join(i int, token string) error {
	c.t.Helper()
	err := testutil.Join(filepath.Join(c.member(i).dir, "unix.socket"), token, c.net.APIAddr(i), c.certPEM())
	if err != nil {
		return err
	}

	c.waitClustered(i)
	return nil
}

// certPEM is the cluster certificate as member 1 presents it (GET /1.0).
func (c *cluster) certPEM() string {
	c.t.Helper()
	code, env, err := c.req(1, "GET", "/1.0", nil, 10*time.Second)
	if err != nil || code != http.StatusOK {
		c.t.Fatalf("GET /1.0 on m1: %d %v", code, err)
	}

	var srv api.Server
	_ = json.Unmarshal(env.Metadata, &srv)
	return srv.Environment.Certificate
}

// waitClustered waits (60 s) until member i answers GET /1.0/cluster as an enabled
// member named m<i>, and member 1 lists it.
func (c *cluster) waitClustered(i int) {
	c.t.Helper()
	var last string
	err := testutil.WaitFor(60*time.Second, 100*time.Millisecond, func() (bool, error) {
		code, env, err := c.req(i, "GET", "/1.0/cluster", nil, 3*time.Second)
		if err != nil {
			return false, err
		}

		var cl api.Cluster
		_ = json.Unmarshal(env.Metadata, &cl)
		last = fmt.Sprintf("%d %s %s", code, env.Error, env.Metadata)
		if code != http.StatusOK || !cl.Enabled || cl.ServerName != memberName(i) {
			return false, errors.New(last)
		}

		ms, err := c.members(1)
		if err != nil {
			return false, err
		}

		return slices.ContainsFunc(ms, func(m api.ClusterMember) bool { return m.ServerName == memberName(i) }), nil
	})
	if err != nil {
		c.t.Fatalf("m%d is not a cluster member: %v\nm%d log:\n%s", i, err, i, tail(c.member(i).log.String(), 40))
	}
}

// members is GET /1.0/cluster/members?recursion=1 through member via (3 s deadline).
func (c *cluster) members(via int) ([]api.ClusterMember, error) {
	return testutil.ClusterMembers(filepath.Join(c.member(via).dir, "unix.socket"))
}

// memberIndex maps "m3" to 3 (0 when the name is not ours).
func memberIndex(name string) int {
	var i int
	_, err := fmt.Sscanf(name, "m%d", &i)
	if err != nil {
		return 0
	}

	return i
}

// leader is the member holding the database-leader role, as member via sees it.
func (c *cluster) leader(via int) (int, error) {
	ms, err := c.members(via)
	if err != nil {
		return 0, err
	}

	for _, m := range ms {
		if slices.Contains(m.Roles, "database-leader") {
			return memberIndex(m.ServerName), nil
		}
	}

	return 0, fmt.Errorf("no member has the database-leader role (through m%d)", via)
}

// waitLeader waits (timeout) for a leader other than not (0: any) that every member in
// via agrees on.
func (c *cluster) waitLeader(timeout time.Duration, not int, via ...int) int {
	c.t.Helper()
	var got int
	err := testutil.WaitFor(timeout, 50*time.Millisecond, func() (bool, error) {
		got = 0
		for _, v := range via {
			l, err := c.leader(v)
			if err != nil {
				return false, err
			}

			if l == not || (got != 0 && got != l) {
				return false, fmt.Errorf("m%d sees m%d as leader", v, l)
			}

			got = l
		}

		return got != 0, nil
	})
	if err != nil {
		c.t.Fatalf("waiting for a leader: %v", err)
	}

	return got
}

// waitVoters waits until member 1 lists n members with a database role, all online.
func (c *cluster) waitVoters(n int, timeout time.Duration) {
	c.t.Helper()
	err := testutil.WaitFor(timeout, 100*time.Millisecond, func() (bool, error) {
		ms, err := c.members(1)
		if err != nil {
			return false, err
		}

		voters := 0
		for _, m := range ms {
			if testutil.IsVoter(m) && strings.EqualFold(m.Status, "online") {
				voters++
			}
		}

		return voters == n, fmt.Errorf("%d database members online: %+v", voters, ms)
	})
	if err != nil {
		c.t.Fatalf("waiting for %d voters: %v", n, err)
	}
}

// req sends one request to member i's unix socket with a deadline, and decodes the
// envelope. Unlike d.raw it never fails the test: an error or a timeout is returned.
func (c *cluster) req(i int, method, path string, body any, timeout time.Duration) (int, api.Response, error) {
	return testutil.UnixRequest(filepath.Join(c.member(i).dir, "unix.socket"), method, path, body, timeout)
}

// createProfile creates profile name through member via with a deadline; an
// acknowledged creation is recorded for checkAcked.
func (c *cluster) createProfile(via int, name string, timeout time.Duration) error {
	code, env, err := c.req(via, "POST", "/1.0/profiles", map[string]any{"name": name, "description": "cluster suite"}, timeout)
	if err != nil {
		return err
	}

	if code != http.StatusOK && code != http.StatusCreated {
		return fmt.Errorf("creating profile %s through m%d: %d %s", name, via, code, env.Error)
	}

	c.ack("profile", name)
	return nil
}

// ack records an object the API acknowledged creating.
func (c *cluster) ack(kind, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked = append(c.acked, ackedObject{kind, name})
}

// launch runs `lxc VERB debian/12 NAME` (launch or init) through remote via, with
// --target when target > 0, records the instance and returns its location.
func (c *cluster) launch(verb string, via, target int, name string) string {
	c.t.Helper()
	args := []string{verb, "m1:debian/12", fmt.Sprintf("m%d:%s", via, name)}
	if target > 0 {
		args = append(args, "--target", memberName(target))
	}

	c.lxc.must(args...)
	c.ack("instance", name)
	return c.location(via, name)
}

// location is the member an instance lives on, through member via (GET its record).
func (c *cluster) location(via int, name string) string {
	c.t.Helper()
	code, env, err := c.req(via, "GET", "/1.0/instances/"+name, nil, 10*time.Second)
	if err != nil || code != http.StatusOK {
		c.t.Fatalf("GET /1.0/instances/%s through m%d: %d %v %s", name, via, code, err, env.Error)
	}

	var inst api.Instance
	_ = json.Unmarshal(env.Metadata, &inst)
	return inst.Location
}

// checkAcked checks, through every member in via, that every acknowledged object exists.
func (c *cluster) checkAcked(via ...int) {
	c.t.Helper()
	c.mu.Lock()
	acked := slices.Clone(c.acked)
	c.mu.Unlock()

	for _, v := range via {
		missing := []string{}
		for _, o := range acked {
			path := "/1.0/profiles/" + o.name
			if o.kind == "instance" {
				path = "/1.0/instances/" + o.name
			}

			code, env, err := c.req(v, "GET", path, nil, 10*time.Second)
			if err != nil || code != http.StatusOK {
				missing = append(missing, fmt.Sprintf("%s %s (%d %v %s)", o.kind, o.name, code, err, env.Error))
			}
		}

		if len(missing) > 0 {
			c.t.Errorf("through m%d, %d of %d acknowledged objects are missing: %s", v, len(missing), len(acked), strings.Join(missing, "; "))
		} else {
			c.t.Logf("through m%d: all %d acknowledged objects exist", v, len(acked))
		}
	}
}

// kill stops member i with sig and waits for it to end.
func (c *cluster) kill(i int, sig syscall.Signal) {
	d := c.member(i)
	if d.cmd == nil {
		return
	}

	t0 := time.Now()
	_ = d.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.t.Errorf("m%d ignored %v for 30 s: killed", i, sig)
		_ = d.cmd.Process.Kill()
		<-done
	}

	c.stopTook = time.Since(t0)
	c.logs[i-1] += d.log.String()
	d.cmd = nil
}

// restart starts member i again on its state directory.
func (c *cluster) restart(i int) error {
	d := c.member(i)
	if d.cmd != nil {
		return nil
	}

	return d.startErr()
}

// destroy brings every member back (a cluster without quorum deletes nothing), deletes
// every instance through each member, stops the members (SIGTERM, SIGKILL after 30 s),
// and removes their directories and cgroups, checking that nothing stays mounted. The
// namespaces go afterwards (their own cleanup, registered before this one).
func (c *cluster) destroy() {
	t := c.t
	for i := 1; i <= len(c.m); i++ {
		if c.member(i).cmd == nil && c.member(i).dir != "" {
			err := c.restart(i)
			if err != nil {
				t.Errorf("cleanup: restarting m%d: %v", i, err)
			}
		}
	}

	// Quorum back (best effort: a failed test may have broken the cluster).
	if c.enabled {
		_ = testutil.WaitFor(20*time.Second, 200*time.Millisecond, func() (bool, error) {
			_, err := c.members(1)
			return err == nil, err
		})
	}

	for i := 1; i <= len(c.m); i++ {
		d := c.member(i)
		if d.cmd == nil {
			continue
		}

		code, env, err := c.req(i, "GET", "/1.0/instances", nil, 10*time.Second)
		if err != nil || code != http.StatusOK {
			t.Logf("cleanup: listing instances on m%d: %d %v %s", i, code, err, env.Error)
			continue
		}

		var urls []string
		_ = json.Unmarshal(env.Metadata, &urls)
		for _, u := range urls {
			name := u[strings.LastIndex(u, "/")+1:]
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			cmd := exec.CommandContext(ctx, berthBin, "delete", "-f", name)
			cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil && !strings.Contains(string(out), "not found") {
				t.Errorf("cleanup: deleting %s through m%d: %v %s", name, i, err, out)
			}
		}
	}

	for i := len(c.m); i >= 1; i-- {
		c.kill(i, syscall.SIGTERM)
	}

	for i, d := range c.m {
		if t.Failed() {
			t.Logf("m%d log:\n%s", i+1, tail(c.logs[i], 80))
		}

		if d.dir == "" {
			continue
		}

		for _, m := range mountsNaming(hostMounts(t), d.dir+"/") {
			t.Errorf("mount left behind: %s (%s from %s, %s)", m.MountPoint, m.FSType, m.Source, m.SuperOptions)
			_ = syscall.Unmount(m.MountPoint, syscall.MNT_DETACH)
		}

		d.removeCgroupParent()
		_ = os.RemoveAll(d.dir)
	}
}
