package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// Sizes of the cluster section.
const (
	clusterProfileWrites = 50  // profile create and delete samples per setup
	clusterInstWrites    = 10  // instance record create and delete samples per setup
	clusterListed        = 100 // stopped instances spread over the members for lxc list
	clusterFailovers     = 10  // leader kills
	clusterMoves         = 3   // moves of a stopped container between members
)

// benchCluster measures clustering (issue 16): write latency (a profile, an instance
// record: create and delete) on a single host against a three-member cluster through its
// leader and through a follower, `lxc list` of 100 instances spread over three members
// through one member, and the failover time (SIGKILL of the leader to the next write
// accepted through another member), over 10 kills. The members run in network namespaces
// of their own (testutil.ClusterNet) joined by a hub bridge. Failures become notes;
// everything is removed at the end.
func benchCluster(b *berthd, image string, r *report) {
	quietBerth(b)
	err := clusterBench(b, image, r)
	if err != nil {
		r.note("cluster: stopped early: %v", err)
	}
}

func clusterBench(b *berthd, image string, r *report) (err error) {
	rows := []string{}
	for _, w := range []string{"profile create", "profile delete", "instance create (stopped)", "instance delete"} {
		for _, setup := range []string{"single host", "3 members via leader", "3 members via follower"} {
			rows = append(rows, "cluster: "+w+", "+setup)
		}
	}

	r.reserve(append(rows, listRow("single host"), listRow("3 members (via m1)"),
		moveRow, "cluster: failover (leader SIGKILL to next write)")...)
	fmt.Fprintln(os.Stderr, "cluster: single-host writes")
	err = writeLatency(filepath.Join(b.dir, "unix.socket"), "single host", "s", r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "cluster: single-host list")
	err = listFigure(filepath.Join(b.dir, "unix.socket"), "single host", func(k int) string { return "" },
		func(args ...string) (string, error) { return lxcAt(b.dir, args...) }, r)
	if err != nil {
		return err
	}

	n, err := testutil.NewClusterNet(3)
	if err != nil {
		return err
	}

	c := &benchCluster3{net: n}
	defer func() {
		for _, p := range c.close() {
			r.note("cluster cleanup: %s", p)
		}
	}()

	fmt.Fprintln(os.Stderr, "cluster: forming")
	t0 := time.Now()
	err = c.form(b.bin, image)
	if err != nil {
		return err
	}

	r.note("cluster: 3 members formed (enable + 2 token joins, 3 voters) in %s", time.Since(t0).Round(time.Millisecond))

	leader, err := c.leader()
	if err != nil {
		return err
	}

	follower := leader%3 + 1
	fmt.Fprintln(os.Stderr, "cluster: writes")
	err = writeLatency(c.sock(leader), "3 members via leader", "l", r)
	if err != nil {
		return err
	}

	err = writeLatency(c.sock(follower), "3 members via follower", "f", r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "cluster: list")
	err = listFigure(c.sock(1), "3 members (via m1)", func(k int) string { return fmt.Sprintf("m%d", k%3+1) },
		func(args ...string) (string, error) { return c.lxc(1, args...) }, r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "cluster: move")
	err = moveFigure(c.sock(1), r)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "cluster: failover")
	return c.failovers(r)
}

// moveRow is the move figure: a stopped container (the test image's tree) moved to
// another member (lxc move --target), the trees sent over the migration protocol.
const moveRow = "cluster: instance move (stopped), member to member"

// moveFigure creates a stopped container on m1 and times its moves round the members
// (m1 to m2, m2 to m3, ...) through socket, then deletes it.
func moveFigure(socket string, r *report) error {
	err := apiDo(socket, "POST", "/1.0/instances?target=m1", instanceSpec("bmv"))
	if err != nil {
		return err
	}

	defer func() { _ = apiDo(socket, "DELETE", "/1.0/instances/bmv", nil) }()
	for k := 0; k < clusterMoves; k++ {
		to := fmt.Sprintf("m%d", (k+1)%3+1)
		t0 := time.Now()
		err := apiDo(socket, "POST", "/1.0/instances/bmv?target="+to, map[string]any{"migration": true})
		if err != nil {
			return err
		}

		r.add(moveRow, time.Since(t0))
	}

	return nil
}

// writeLatency times profile and instance-record creates and deletes through socket.
func writeLatency(socket, setup, tag string, r *report) error {
	for k := 0; k < clusterProfileWrites; k++ {
		name := fmt.Sprintf("bw-%s-%d", tag, k)
		t0 := time.Now()
		err := apiDo(socket, "POST", "/1.0/profiles", map[string]any{"name": name})
		if err != nil {
			return err
		}

		r.add("cluster: profile create, "+setup, time.Since(t0))
		t0 = time.Now()
		err = apiDo(socket, "DELETE", "/1.0/profiles/"+name, nil)
		if err != nil {
			return err
		}

		r.add("cluster: profile delete, "+setup, time.Since(t0))
	}

	for k := 0; k < clusterInstWrites; k++ {
		name := fmt.Sprintf("bi-%s-%d", tag, k)
		t0 := time.Now()
		err := apiDo(socket, "POST", "/1.0/instances", instanceSpec(name))
		if err != nil {
			return err
		}

		r.add("cluster: instance create (stopped), "+setup, time.Since(t0))
		t0 = time.Now()
		err = apiDo(socket, "DELETE", "/1.0/instances/"+name, nil)
		if err != nil {
			return err
		}

		r.add("cluster: instance delete, "+setup, time.Since(t0))
	}

	return nil
}

func instanceSpec(name string) map[string]any {
	return map[string]any{"name": name, "type": "container", "source": map[string]any{"type": "image", "alias": "debian/12"}}
}

// apiDo sends a request and, for an operation, waits for it; any failure is an error.
func apiDo(socket, method, path string, body any) error {
	code, env, err := testutil.UnixRequest(socket, method, path, body, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}

	if code >= 400 || env.Type == "error" {
		return fmt.Errorf("%s %s: %d %s", method, path, code, env.Error)
	}

	if env.Type != "async" {
		return nil
	}

	code, env, err = testutil.UnixRequest(socket, "GET", env.Operation+"/wait?timeout=120", nil, 130*time.Second)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("%s %s: waiting: %d %v %s", method, path, code, err, env.Error)
	}

	op, err := env.MetadataAsOperation()
	if err != nil {
		return err
	}

	if op.StatusCode != api.Success {
		return fmt.Errorf("%s %s: %s: %s", method, path, op.Status, op.Err)
	}

	return nil
}

// benchCluster3 is three berthd members m1..m3 in their own namespaces.
type benchCluster3 struct {
	net *testutil.ClusterNet
	m   []*berthd // m[i-1] is member i
}

func (c *benchCluster3) sock(i int) string { return filepath.Join(c.m[i-1].dir, "unix.socket") }

// lxc runs the stock client against member i's unix socket.
func (c *benchCluster3) lxc(i int, args ...string) (string, error) {
	return lxcAt(c.m[i-1].dir, args...)
}

// lxcAt runs the stock client against the daemon of dir over its unix socket, with a
// configuration of its own under dir (removed with it).
func lxcAt(dir string, args ...string) (string, error) {
	conf := filepath.Join(dir, "bench-lxc")
	cmd := exec.Command("lxc", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + conf, "LXD_CONF=" + filepath.Join(conf, "lxc"), "LXD_DIR=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lxc %s: %w: %s", strings.Join(args, " "), err, trim(string(out)))
	}

	return string(out), nil
}

// form starts the members, imports the image on m1, enables clustering on it and joins
// m2 and m3 with tokens, then waits for three voters.
func (c *benchCluster3) form(binDir, image string) error {
	for i := 1; i <= 3; i++ {
		dir, err := os.MkdirTemp("/tmp", "bc-")
		if err != nil {
			return err
		}

		m := &berthd{dir: dir, bin: binDir, env: []string{"BERTH_HOST_TUNING=0"}, netns: c.net.Path(i)}
		c.m = append(c.m, m)
		err = c.startMember(i)
		if err != nil {
			return err
		}

		err = apiDo(c.sock(i), "PATCH", "/1.0", map[string]any{"config": map[string]any{"core.https_address": c.net.APIAddr(i)}})
		if err != nil {
			return err
		}
	}

	_, err := c.m[0].berth("image", "import", image, "--alias", "debian/12")
	if err != nil {
		return err
	}

	_, _ = c.lxc(1, "list") // a fresh LXD_CONF prints a welcome hint first
	_, err = c.lxc(1, "cluster", "enable", "m1")
	if err != nil {
		return err
	}

	err = c.waitClustered(1)
	if err != nil {
		return err
	}

	code, env, err := testutil.UnixRequest(c.sock(1), "GET", "/1.0", nil, 10*time.Second)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("GET /1.0 on m1: %d %v", code, err)
	}

	var srv api.Server
	_ = json.Unmarshal(env.Metadata, &srv)

	for i := 2; i <= 3; i++ {
		out, err := c.lxc(1, "cluster", "add", fmt.Sprintf("m%d", i))
		if err != nil {
			return err
		}

		f := strings.Fields(out)
		if len(f) == 0 {
			return fmt.Errorf("lxc cluster add printed no token")
		}

		err = testutil.Join(c.sock(i), f[len(f)-1], c.net.APIAddr(i), srv.Environment.Certificate)
		if err != nil {
			return fmt.Errorf("joining m%d: %w", i, err)
		}

		err = c.waitClustered(i)
		if err != nil {
			return err
		}
	}

	return c.waitVoters(3, time.Minute)
}

// startMember starts member i on its directory and waits until it answers.
func (c *benchCluster3) startMember(i int) error {
	err := c.m[i-1].start()
	if err != nil {
		return err
	}

	return testutil.WaitFor(30*time.Second, 20*time.Millisecond, func() (bool, error) {
		code, _, err := testutil.UnixRequest(c.sock(i), "GET", "/1.0", nil, 2*time.Second)
		return err == nil && code == http.StatusOK, err
	})
}

// waitClustered waits until member i serves as an enabled member named m<i>.
func (c *benchCluster3) waitClustered(i int) error {
	err := testutil.WaitFor(time.Minute, 100*time.Millisecond, func() (bool, error) {
		code, env, err := testutil.UnixRequest(c.sock(i), "GET", "/1.0/cluster", nil, 3*time.Second)
		if err != nil {
			return false, err
		}

		var cl api.Cluster
		_ = json.Unmarshal(env.Metadata, &cl)
		return code == http.StatusOK && cl.Enabled && cl.ServerName == fmt.Sprintf("m%d", i), fmt.Errorf("%d %s", code, env.Error)
	})
	if err != nil {
		return fmt.Errorf("m%d is not a cluster member: %w", i, err)
	}

	return nil
}

// waitVoters waits until member 1 (or, when it is down, any member) counts n online voters.
func (c *benchCluster3) waitVoters(n int, timeout time.Duration) error {
	return testutil.WaitFor(timeout, 100*time.Millisecond, func() (bool, error) {
		var last error
		for i := 1; i <= 3; i++ {
			if c.m[i-1].cmd == nil {
				continue
			}

			v, err := testutil.OnlineVoters(c.sock(i))
			if err == nil {
				return v == n, fmt.Errorf("%d online voters", v)
			}

			last = err
		}

		return false, last
	})
}

// leader is the index of the member holding the database-leader role.
func (c *benchCluster3) leader() (int, error) {
	var last error
	for i := 1; i <= 3; i++ {
		if c.m[i-1].cmd == nil {
			continue
		}

		name, err := testutil.ClusterLeader(c.sock(i))
		if err == nil {
			var l int
			_, err = fmt.Sscanf(name, "m%d", &l)
			if err == nil && l >= 1 && l <= 3 {
				return l, nil
			}
		}

		last = err
	}

	return 0, fmt.Errorf("no leader: %v", last)
}

func listRow(setup string) string {
	return fmt.Sprintf("cluster: lxc list, %d instances, %s", clusterListed, setup)
}

// listFigure creates 100 stopped instances through socket (?target= as target(k) says),
// times `lxc list` (the stock table, every column) with lxc, then deletes them.
func listFigure(socket, setup string, target func(k int) string, lxc func(args ...string) (string, error), r *report) error {
	t0 := time.Now()
	for k := 0; k < clusterListed; k++ {
		path := "/1.0/instances"
		if t := target(k); t != "" {
			path += "?target=" + t
		}

		err := apiDo(socket, "POST", path, instanceSpec(fmt.Sprintf("cl%d", k)))
		if err != nil {
			return err
		}
	}

	r.note("cluster: %d stopped instances created, %s, in %s", clusterListed, setup, time.Since(t0).Round(time.Millisecond))
	defer func() {
		for k := 0; k < clusterListed; k++ {
			_ = apiDo(socket, "DELETE", fmt.Sprintf("/1.0/instances/cl%d", k), nil)
		}
	}()

	_, _ = lxc("list") // a fresh LXD_CONF prints a welcome hint first
	cols := "nL"
	if target(0) == "" {
		cols = "n" // lxc refuses LOCATION when not clustered
	}

	out, err := lxc("list", "--format", "csv", "-c", cols)
	if err != nil {
		return err
	}

	perMember := map[string]int{}
	for _, line := range strings.Split(trim(out), "\n") {
		_, loc, _ := strings.Cut(line, ",")
		perMember[loc]++
	}

	r.note("cluster: lxc list, %s, sees %v", setup, perMember)
	for k := 0; k < *runs; k++ {
		t0 := time.Now()
		_, err := lxc("list")
		if err != nil {
			return err
		}

		r.add(listRow(setup), time.Since(t0))
	}

	return nil
}

// failovers kills the leader with SIGKILL, times the first profile write accepted through
// one of the two others (attempts alternate between them, 500 ms deadline each), then
// restarts the killed member and waits for three voters again.
func (c *benchCluster3) failovers(r *report) error {
	for run := 0; run < clusterFailovers; run++ {
		l, err := c.leader()
		if err != nil {
			return err
		}

		others := []int{l%3 + 1, (l+1)%3 + 1}
		m := c.m[l-1]
		t0 := time.Now()
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil

		var took time.Duration
		var last error
		for k := 0; took == 0 && time.Since(t0) < 30*time.Second; k++ {
			body := map[string]any{"name": fmt.Sprintf("fo-%d-%d", run, k)}
			code, env, err := testutil.UnixRequest(c.sock(others[k%2]), "POST", "/1.0/profiles", body, 500*time.Millisecond)
			switch {
			case err == nil && code < 400:
				took = time.Since(t0)
			case err != nil:
				last = err
			default:
				last = fmt.Errorf("%d %s", code, env.Error)
			}
		}

		if took == 0 {
			return fmt.Errorf("failover %d: no write within 30 s of killing m%d: %v", run, l, last)
		}

		r.add("cluster: failover (leader SIGKILL to next write)", took)
		err = c.startMember(l)
		if err != nil {
			return err
		}

		err = c.waitVoters(3, time.Minute)
		if err != nil {
			return fmt.Errorf("after failover %d: %w", run, err)
		}
	}

	return nil
}

// close deletes what is left on the members while all are up (a cluster without quorum
// deletes nothing), stops them (SIGTERM, SIGKILL after 30 s), removes their directories
// and cgroups, then the namespaces. It returns what it could not clean.
func (c *benchCluster3) close() []string {
	problems := []string{}
	for i, m := range c.m {
		if m.cmd == nil && m.dir != "" {
			err := c.startMember(i + 1)
			if err != nil {
				problems = append(problems, fmt.Sprintf("restarting m%d: %v", i+1, err))
			}
		}
	}

	for i := range c.m {
		code, env, err := testutil.UnixRequest(c.sock(i+1), "GET", "/1.0/instances", nil, 10*time.Second)
		if err != nil || code != http.StatusOK {
			continue
		}

		var urls []string
		_ = json.Unmarshal(env.Metadata, &urls)
		for _, u := range urls {
			name := u[strings.LastIndex(u, "/")+1:]
			err := apiDo(c.sock(i+1), "DELETE", "/1.0/instances/"+name, nil)
			if err != nil && !strings.Contains(err.Error(), "not found") {
				problems = append(problems, err.Error())
			}
		}
	}

	for i := len(c.m) - 1; i >= 0; i-- {
		m := c.m[i]
		if m.cmd != nil {
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = m.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				problems = append(problems, fmt.Sprintf("m%d ignored SIGTERM for 30 s, killed", i+1))
				_ = m.cmd.Process.Kill()
				<-done
			}
		}

		l, err := cgroup.Detect()
		if err == nil {
			l.Parent = cgroup.ParentFor(m.dir)
			err = l.RemoveParent()
		}

		if err != nil {
			problems = append(problems, fmt.Sprintf("m%d: %v", i+1, err))
		}

		_ = os.RemoveAll(m.dir)
	}

	return append(problems, c.net.Close()...)
}
