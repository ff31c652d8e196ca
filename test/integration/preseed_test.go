package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// Preseeds (lxd init --preseed's YAML): `berth init --preseed`, `berthd --preseed` and
// the stock `lxd init --preseed` of Debian's LXD 5.0.2 against berthd, on one host and
// for a cluster join.

// withStdin runs bin with args and stdin in env; it returns the combined output and the
// exit code.
func withStdin(env []string, stdin, bin string, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}

	if err != nil {
		return string(out) + err.Error(), -1
	}

	return string(out), 0
}

// preseedObjects checks through the API that what a preseed made is there (want true) or
// gone (want false): network, pool and profile by name ("" skips), with the network's
// bridge and the pool's directory on the host.
func preseedObjects(t *testing.T, d *daemon, want bool, network, pool, profile string) {
	t.Helper()
	check := func(path, what string) {
		code, _ := d.raw("GET", path, nil)
		if (code == http.StatusOK) != want {
			t.Errorf("%s: GET %s is %d (want present=%v)", what, path, code, want)
		}
	}

	if network != "" {
		check("/1.0/networks/"+network, "network")
		_, err := net.InterfaceByName(network)
		if (err == nil) != want {
			t.Errorf("bridge %s on the host: %v (want present=%v)", network, err, want)
		}
	}

	if pool != "" {
		check("/1.0/storage-pools/"+pool, "storage pool")
		_, err := os.Stat(filepath.Join(d.dir, "storage-pools", pool))
		if (err == nil) != want {
			t.Errorf("pool directory %s: %v (want present=%v)", pool, err, want)
		}
	}

	if profile != "" {
		check("/1.0/profiles/"+profile, "profile")
	}
}

func serverConfig(t *testing.T, d *daemon) map[string]string {
	t.Helper()
	srv, _, err := d.c.GetServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	return srv.Config
}

func profileOf(t *testing.T, d *daemon, name string) *api.Profile {
	t.Helper()
	p, _, err := d.c.GetProfile(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	return p
}

// TestPreseedSingleHost: `berth init --preseed` sets the server config and creates a
// network, a storage pool, a project and a profile using them, and updates the default
// profile (each checked through the API and on the host); applied again it changes
// nothing. A preseed whose profile the server refuses, after a new network, a new pool,
// a config change and a profile update, leaves the host as it was: the network and its
// bridge, the pool and its directory are gone, the config and the default profile are
// restored, and the error is one line saying so. Bad YAML and unknown keys change
// nothing.
func TestPreseedSingleHost(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	br, br2 := testNetName("ps"), testNetName("pt")
	env := []string{"BERTH_DIR=" + d.dir}
	t.Cleanup(func() {
		for _, n := range []string{"psprof", "bad"} {
			_, _ = d.berthErr("profile", "delete", n)
		}

		for _, n := range []string{br, br2} {
			_, _ = d.berthErr("network", "delete", n)
		}
	})

	good := fmt.Sprintf(`config:
  core.remote_token_expiry: 2H
networks:
- name: %s
  type: bridge
  description: preseeded
  config:
    ipv6.address: none
storage_pools:
- name: pspool
  driver: dir
projects:
- name: psproj
  description: preseeded
profiles:
- name: default
  description: preseeded default
- name: psprof
  devices:
    root: {path: /, pool: pspool, type: disk}
    eth0: {type: nic, name: eth0, network: %s}
`, br, br)
	out, code := withStdin(env, good, berthBin, "init", "--preseed")
	if code != 0 {
		t.Fatalf("berth init --preseed: exit %d\n%s\nberthd log:\n%s", code, out, tail(d.log.String(), 30))
	}

	preseedObjects(t, d, true, br, "pspool", "psprof")
	if v := serverConfig(t, d)["core.remote_token_expiry"]; v != "2H" {
		t.Errorf("core.remote_token_expiry is %q", v)
	}

	nw, _, err := d.c.GetNetwork(context.Background(), br)
	if err != nil || nw.Type != "bridge" || nw.Description != "preseeded" || nw.Config["ipv6.address"] != "none" {
		t.Errorf("network %s: %+v %v", br, nw, err)
	}

	prof := profileOf(t, d, "psprof")
	if prof.Devices["root"]["pool"] != "pspool" || prof.Devices["eth0"]["network"] != br {
		t.Errorf("profile psprof: %+v", prof.Devices)
	}

	if def := profileOf(t, d, "default"); def.Description != "preseeded default" || def.Devices["eth0"] == nil {
		t.Errorf("default profile after the update (description set, devices kept): %+v", def)
	}

	if code, _ := d.raw("GET", "/1.0/projects/psproj", nil); code != http.StatusOK {
		t.Errorf("project psproj: %d", code)
	}

	// Again: everything exists, so everything is updated to what it is.
	out, code = withStdin(env, good, berthBin, "init", "--preseed")
	if code != 0 {
		t.Fatalf("the same preseed again: exit %d\n%s", code, out)
	}

	// A failing preseed is rolled back.
	failing := fmt.Sprintf(`config:
  core.remote_token_expiry: 5H
storage_pools:
- name: pspool2
  driver: dir
networks:
- name: %s
  type: bridge
  config:
    ipv6.address: none
profiles:
- name: default
  description: changed by a failing preseed
- name: bad
  devices:
    x: {type: bogus}
`, br2)
	file := filepath.Join(t.TempDir(), "failing.yaml")
	err = os.WriteFile(file, []byte(failing), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	out, code = withStdin(env, "", berthBin, "init", "--preseed", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 1 || !strings.Contains(out, `Error: Creating profile "bad": device "x" has unknown type`) || !strings.Contains(out, "all 4 changes rolled back") {
		t.Errorf("the failing preseed: exit %d, output:\n%s", code, out)
	}

	preseedObjects(t, d, false, br2, "pspool2", "bad")
	preseedObjects(t, d, true, br, "pspool", "psprof")
	if v := serverConfig(t, d)["core.remote_token_expiry"]; v != "2H" {
		t.Errorf("core.remote_token_expiry after the rollback is %q, want 2H", v)
	}

	if def := profileOf(t, d, "default"); def.Description != "preseeded default" {
		t.Errorf("default profile after the rollback: %q", def.Description)
	}

	// Bad input: one line, exit 1, nothing changed (nothing is sent: a profile that
	// would be created is not).
	for _, c := range []struct{ yaml, want string }{
		{"profiles:\n- name: never\n  bogus: 1\n", `Error: Invalid preseed: line 3: unknown key "bogus" in a profile`},
		{"profiles:\n- name: never\n config: {}\n", "Error: Invalid preseed YAML: line 2: did not find expected key"},
		{"storage_volumes:\n- name: v\nprofiles:\n- name: never\n", `unknown key "storage_volumes" at the top level`},
	} {
		out, code := withStdin(env, c.yaml, berthBin, "init", "--preseed")
		if code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, c.want) {
			t.Errorf("preseed %q: exit %d, output %q, want one line with %q", c.yaml, code, out, c.want)
		}
	}

	preseedObjects(t, d, false, "", "", "never")
}

// TestPreseedStockLXDInit: Debian's `lxd init --preseed` (LXD 5.0.2) against berthd
// (LXD_DIR points it at berthd's socket) creates what its preseed asks, and its own
// rollback, through berthd's API, removes a network it created when a later profile is
// refused. berthd --preseed applies a file once the API is up, records it (a restart
// with the same file does nothing), and a failing one stops berthd with exit 1 after
// rolling back. A bad file stops berthd before it touches its state directory.
func TestPreseedStockLXDInit(t *testing.T) {
	parallel(t)
	lxdBin := testutil.LookPath(t, "lxd", "Debian package lxd")
	d := startNetDaemon(t)
	br, br2, br3 := testNetName("pl"), testNetName("pm"), testNetName("pn")
	t.Cleanup(func() {
		for _, n := range []string{"lxdprof", "bdprof"} {
			_, _ = d.berthErr("profile", "delete", n)
		}

		for _, n := range []string{br, br2, br3} {
			_, _ = d.berthErr("network", "delete", n)
		}
	})

	env := []string{"LXD_DIR=" + d.dir}
	out, code := withStdin(env, fmt.Sprintf(`networks:
- name: %s
  type: bridge
  config: {ipv6.address: none}
storage_pools:
- name: lxdpool
  driver: dir
profiles:
- name: lxdprof
  devices:
    root: {path: /, pool: lxdpool, type: disk}
`, br), lxdBin, "init", "--preseed")
	if code != 0 {
		t.Fatalf("lxd init --preseed: exit %d\n%s\nberthd log:\n%s", code, out, tail(d.log.String(), 30))
	}

	preseedObjects(t, d, true, br, "lxdpool", "lxdprof")

	out, code = withStdin(env, fmt.Sprintf(`networks:
- name: %s
  type: bridge
  config: {ipv6.address: none}
profiles:
- name: lxdbad
  devices:
    x: {type: bogus}
`, br2), lxdBin, "init", "--preseed")
	if code == 0 || !strings.Contains(out, `Failed to create profile "lxdbad"`) {
		t.Errorf("lxd init --preseed with a bad profile: exit %d\n%s", code, out)
	}

	preseedObjects(t, d, false, br2, "", "lxdbad")

	// berthd --preseed.
	file := filepath.Join(t.TempDir(), "preseed.yaml")
	err := os.WriteFile(file, []byte(fmt.Sprintf("networks:\n- name: %s\n  type: bridge\n  config: {ipv6.address: none}\nprofiles:\n- name: bdprof\n", br3)), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	d.kill(syscall.SIGTERM)
	d.args = []string{"--preseed", file}
	d.start()
	waitLog(t, d, "preseed applied")
	preseedObjects(t, d, true, br3, "", "bdprof")

	// Once per content: a restart with the same file does not put back what was removed.
	_ = d.berth("profile", "delete", "bdprof")
	d.kill(syscall.SIGTERM)
	d.start()
	waitLog(t, d, "preseed already applied")
	preseedObjects(t, d, false, "", "", "bdprof")

	// A changed file that fails: rolled back, and berthd stops with exit 1.
	err = os.WriteFile(file, []byte("profiles:\n- name: bdprof\n- name: bdbad\n  devices:\n    x: {type: bogus}\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	d.kill(syscall.SIGTERM)
	// The API may be up only for the moment the preseed takes to fail: a start that
	// never saw it is no error here, the exit below is what counts.
	_ = d.startErr()
	cmd := d.cmd
	if cmd == nil {
		t.Fatal("berthd did not start")
	}

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("berthd kept running after its preseed failed:\n%s", tail(d.log.String(), 30))
	}

	d.cmd = nil
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(d.log.String(), `creating profile \"bdbad\"`) {
		t.Errorf("berthd after a failing preseed: %v\n%s", err, tail(d.log.String(), 20))
	}

	d.args = nil
	d.start()
	preseedObjects(t, d, false, "", "", "bdprof")

	// A bad file: berthd refuses to start, before making its state directory.
	fresh := filepath.Join(t.TempDir(), "never")
	_ = os.WriteFile(file, []byte("config:\n  a: [b]\n"), 0o600)
	out, code = withStdin(nil, "", berthdBin, "--dir", fresh, "--preseed", file)
	if code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, `config key "a": the value must be a string`) {
		t.Errorf("berthd with a bad preseed: exit %d\n%s", code, out)
	}

	if _, err := os.Stat(fresh); err == nil {
		t.Error("berthd with a bad preseed made its state directory")
	}
}

// waitLog waits (60 s) for berthd's log to contain s.
func waitLog(t *testing.T, d *daemon, s string) {
	t.Helper()
	err := testutil.WaitFor(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(d.log.String(), s), nil
	})
	if err != nil {
		t.Fatalf("berthd never logged %q:\n%s", s, tail(d.log.String(), 30))
	}
}

// TestPreseedClusterJoin: in the 3-member harness, m1 enables clustering by `berth init
// --preseed`, m2 joins with the stock `lxd init
// --preseed` run in its namespace (it sends the token as cluster_password, with the
// certificate it checked against the token), and m3 is restarted as `berthd --preseed
// FILE` with a cluster_token: it comes up, joins unattended and re-executes as a member;
// a restart with the same file leaves it a member without another join. A join preseed
// with something else to create is refused before anything happens.
func TestPreseedClusterJoin(t *testing.T) {
	parallel(t)
	lxdBin := testutil.LookPath(t, "lxd", "Debian package lxd")
	c := newCluster(t, 3)

	// m1: clustering enabled by `berth init --preseed` (as c.enable, with a preseed).
	c.lxc.must("remote", "add", "m1", c.member(1).trustToken("hub"))
	c.enabled = true
	o, code := withStdin([]string{"BERTH_DIR=" + c.member(1).dir},
		fmt.Sprintf("config:\n  core.https_address: %s\ncluster:\n  enabled: true\n  server_name: m1\n", c.net.APIAddr(1)),
		berthBin, "init", "--preseed")
	if code != 0 {
		t.Fatalf("berth init --preseed (enable) on m1: exit %d\n%s", code, o)
	}

	c.waitClustered(1)

	// m2: Debian's lxd init.
	tok := c.token("m2")
	cmd := c.net.Command(2, lxdBin, "init", "--preseed")
	cmd.Env = append(os.Environ(), "LXD_DIR="+c.member(2).dir)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("cluster:\n  enabled: true\n  server_address: %s\n  cluster_token: %s\n", c.net.APIAddr(2), tok))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Fatalf("lxd init --preseed on m2: %v\n%s\nm2 log:\n%s", err, out.String(), tail(c.member(2).log.String(), 30))
	}

	c.waitClustered(2)

	// m3: berthd --preseed.
	tok = c.token("m3")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte(fmt.Sprintf("profiles:\n- name: p\ncluster:\n  enabled: true\n  cluster_token: %s\n", tok)), 0o600)
	o, code = withStdin(nil, "", berthdBin, "--dir", filepath.Join(dir, "never"), "--preseed", bad)
	if code != 1 || !strings.Contains(o, "a preseed that joins a cluster cannot have profiles") {
		t.Errorf("a join preseed with a profile: exit %d\n%s", code, o)
	}

	file := filepath.Join(dir, "join.yaml")
	err = os.WriteFile(file, []byte(fmt.Sprintf("config:\n  core.https_address: %s\ncluster:\n  enabled: true\n  cluster_token: %s\n", c.net.APIAddr(3), tok)), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	m3 := c.member(3)
	m3.kill(syscall.SIGTERM)
	m3.args = []string{"--preseed", file}
	m3.start()
	c.waitClustered(3)
	waitLog(t, m3, "preseed applied")

	ms, err := c.members(3)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members through m3: %+v %v", ms, err)
	}

	// The token was single use and the preseed is recorded: a restart stays a member.
	m3.kill(syscall.SIGTERM)
	m3.start()
	c.waitClustered(3)
	waitLog(t, m3, "preseed already applied")
	c.waitVoters(3, 30*time.Second)
}
