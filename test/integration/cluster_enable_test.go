package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// The membership core end to end (issue 16): `lxc cluster enable` on a host that has a
// running container, an image, a custom profile and a custom volume keeps them all
// (and the container's very process) across the copy into dqlite and the re-exec;
// join tokens from `lxc cluster add` are listed and revoked by the stock client; a
// second daemon joins with a token, and a used, wrong or expired token is refused.

// waitClustered waits out a restart until GET /1.0/cluster says this member is name.
func (d *daemon) waitClustered(name string) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, env := d.rawQuiet("GET", "/1.0/cluster")
		if code == http.StatusOK {
			var c api.Cluster
			_ = json.Unmarshal(env.Metadata, &c)
			if c.Enabled && c.ServerName == name {
				// The restart closed the client's connections: a fresh client.
				c, err := client.Connect(filepath.Join(d.dir, "unix.socket"))
				if err != nil {
					d.t.Fatal(err)
				}

				d.c = c
				return
			}
		}

		time.Sleep(100 * time.Millisecond)
	}

	d.t.Fatalf("the daemon did not come back clustered as %q:\n%s", name, tail(d.log.String(), 80))
}

// rawQuiet is a GET over the unix socket that tolerates the daemon being away
// (restarting): status 0 then.
func (d *daemon) rawQuiet(method, path string) (int, api.Response) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "unix.socket"))
	}}}

	req, _ := http.NewRequest(method, "http://unix.socket"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, api.Response{}
	}

	defer func() { _ = resp.Body.Close() }()
	var env api.Response
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &env)
	return resp.StatusCode, env
}

func (d *daemon) serverEnv() api.ServerEnvironment {
	d.t.Helper()
	_, env := d.raw("GET", "/1.0", nil)
	var srv api.Server
	err := json.Unmarshal(env.Metadata, &srv)
	if err != nil {
		d.t.Fatal(err)
	}

	return srv.Environment
}

// acceptCall posts a join request straight to a member's accept endpoint.
func acceptCall(t *testing.T, addr, name, joinAddr, secret string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "address": joinAddr, "secret": secret, "schema": 0, "api_extensions": 0})
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Post("https://"+addr+"/internal/cluster/accept", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func tokenOf(t *testing.T, out string) api.ClusterMemberJoinToken {
	t.Helper()
	f := strings.Fields(strings.TrimSpace(out))
	if len(f) == 0 {
		t.Fatalf("no token in %q", out)
	}

	data, err := base64Decode(f[len(f)-1])
	if err != nil {
		t.Fatalf("token %q: %v", f[len(f)-1], err)
	}

	var tok api.ClusterMemberJoinToken
	err = json.Unmarshal(data, &tok)
	if err != nil || tok.Secret == "" {
		t.Fatalf("token %q: %v", data, err)
	}

	tok.ExpiresAt = f[len(f)-1] // the encoded token, for the caller
	return tok
}

func TestClusterEnableKeepsEverythingAndJoins(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()

	// Before: a running container, an image, a custom profile and a custom volume.
	d.berth("launch", "debian/12", "c1")
	d.waitRunning("c1")
	pid := d.initPID("c1")
	d.berth("profile", "create", "p1")
	code, env := d.raw("POST", "/1.0/storage-pools/default/volumes/custom", strings.NewReader(`{"name":"v1","type":"custom"}`))
	if code >= 300 {
		t.Fatalf("creating volume: %d %s", code, env.Error)
	}

	lxc := newLXC(t, "")
	lxc.must("remote", "add", "A", d.trustToken("cli"))

	// Joining needs a network address: a clear refusal comes before any change (checked
	// on the second daemon, which has none yet).
	d2 := startDaemon(t)
	// Member 2 would see c1 in the shared inventory when its own cleanup runs (first):
	// c1 is deleted through its own member before that (forwarding is not this test's).
	t.Cleanup(func() { _, _ = d.berthErr("delete", "-f", "c1") })
	code, env = d2.raw("PUT", "/1.0/cluster", strings.NewReader(`{"server_name":"n2","enabled":true}`))
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "core.https_address") {
		t.Fatalf("enable without an address: %d %q", code, env.Error)
	}

	// A host never clustered runs no dqlite: no node directory, nothing on the raft port.
	_, err := os.Stat(filepath.Join(d.dir, "database", "global"))
	if !os.IsNotExist(err) {
		t.Fatalf("an unclustered host has a dqlite directory: %v", err)
	}

	out := lxc.must("cluster", "enable", "A:", "n1")
	if !strings.Contains(out, "Clustering enabled") {
		t.Fatalf("lxc cluster enable said %q", out)
	}

	d.waitClustered("n1")

	// Everything is still there, and the container is the same process.
	if !alive(pid, 0) || d.initPID("c1") != pid {
		t.Fatalf("container c1 did not keep running (init pid %d)", pid)
	}

	list := lxc.must("list", "A:", "-c", "ns", "--format", "csv")
	if !strings.Contains(list, "c1,RUNNING") {
		t.Fatalf("lxc list after enable: %q", list)
	}

	if imgs := lxc.must("image", "list", "A:", "--format", "csv"); !strings.Contains(imgs, "debian/12") {
		t.Fatalf("image gone after enable: %q", imgs)
	}

	if profs := d.berth("profile", "list"); !strings.Contains(profs, "p1") {
		t.Fatalf("profile gone after enable: %q", profs)
	}

	code, env = d.raw("GET", "/1.0/storage-pools/default/volumes/custom/v1", nil)
	if code != http.StatusOK {
		t.Fatalf("volume gone after enable: %d %s", code, env.Error)
	}

	envr := d.serverEnv()
	if !envr.ServerClustered || envr.ServerName != "n1" {
		t.Fatalf("GET /1.0 after enable: clustered %v, name %q", envr.ServerClustered, envr.ServerName)
	}

	fi, err := os.Stat(filepath.Join(d.dir, "database", "berth.db.pre-cluster"))
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("pre-cluster backup: %v %v", fi, err)
	}

	_, err = os.Stat(filepath.Join(d.dir, "database", "berth.db"))
	if !os.IsNotExist(err) {
		t.Fatalf("berth.db is still there: %v", err)
	}

	// Enabling twice is refused.
	code, env = d.raw("PUT", "/1.0/cluster", strings.NewReader(`{"server_name":"n1","enabled":true}`))
	if code != http.StatusBadRequest {
		t.Fatalf("second enable: %d %q", code, env.Error)
	}

	// /internal/ is for members only.
	code, body := acceptCall(t, addr, "n9", "127.0.0.9:8443", "nope")
	if code != http.StatusForbidden {
		t.Fatalf("accept with a wrong secret: %d %s", code, body)
	}

	// Tokens, through the stock client.
	tokN2 := tokenOf(t, lxc.must("cluster", "add", "A:n2"))
	if tokN2.ServerName != "n2" || len(tokN2.Addresses) != 1 || tokN2.Addresses[0] != addr {
		t.Fatalf("token: %+v", tokN2)
	}

	if toks := lxc.must("cluster", "list-tokens", "A:", "--format", "csv"); !strings.Contains(toks, "n2,") {
		t.Fatalf("list-tokens: %q", toks)
	}

	lxc.must("cluster", "revoke-token", "A:n2")
	if toks := lxc.must("cluster", "list-tokens", "A:", "--format", "csv"); strings.Contains(toks, "n2,") {
		t.Fatalf("list-tokens after revoke: %q", toks)
	}

	code, body = acceptCall(t, addr, "n2", "127.0.0.2:8443", tokN2.Secret)
	if code != http.StatusForbidden {
		t.Fatalf("accept with a revoked token: %d %s", code, body)
	}

	// An expired token is refused.
	d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"cluster.join_token_expiry":"1S"}}`))
	tokN3 := tokenOf(t, lxc.must("cluster", "add", "A:n3"))
	time.Sleep(2 * time.Second)
	code, body = acceptCall(t, addr, "n3", "127.0.0.3:8443", tokN3.Secret)
	if code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Fatalf("accept with an expired token: %d %s", code, body)
	}

	d.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"cluster.join_token_expiry":""}}`))

	// A second, fresh daemon joins with a token (`berth cluster join`).
	tok := tokenOf(t, lxc.must("cluster", "add", "A:n2"))
	addr2 := d2.listenHTTPS()

	// Only a fresh host joins: a custom volume makes it refuse, before the token is used.
	code, env = d2.raw("POST", "/1.0/storage-pools/default/volumes/custom", strings.NewReader(`{"name":"keep","type":"custom"}`))
	if code >= 300 {
		t.Fatalf("creating volume on member 2: %d %s", code, env.Error)
	}

	out, err = d2.berthErr("cluster", "join", tok.ExpiresAt)
	if err == nil || !strings.Contains(strings.ToLower(out), "only a fresh server") {
		t.Fatalf("a host with a custom volume joined: %v %q", err, out)
	}

	code, env = d2.raw("DELETE", "/1.0/storage-pools/default/volumes/custom/keep", nil)
	if code >= 300 {
		t.Fatalf("deleting volume on member 2: %d %s", code, env.Error)
	}

	d2.berth("cluster", "join", tok.ExpiresAt)
	d2.waitClustered("n2")

	env2 := d2.serverEnv()
	if !env2.ServerClustered || env2.ServerName != "n2" || env2.CertificateFingerprint != d.serverEnv().CertificateFingerprint {
		t.Fatalf("member 2: clustered %v, name %q, certificate %s", env2.ServerClustered, env2.ServerName, env2.CertificateFingerprint)
	}

	// One inventory: member 2 sees member 1's profile and container.
	if profs := d2.berth("profile", "list"); !strings.Contains(profs, "p1") {
		t.Fatalf("member 2 does not see the cluster's profiles: %q", profs)
	}

	// The used token is refused when presented again.
	code, body = acceptCall(t, addr, "n2", addr2, tok.Secret)
	if code != http.StatusForbidden {
		t.Fatalf("reused token: %d %s", code, body)
	}

	// Tokens live in the cluster database: one issued through member 1 is listed, and
	// revoked, by the stock client talking to member 2.
	lxc.must("cluster", "add", "A:n3")
	lxc2 := newLXC(t, d2.dir)
	if toks := lxc2.must("cluster", "list-tokens", "--format", "csv"); !strings.Contains(toks, "n3,") {
		t.Fatalf("member 2 does not list member 1's token: %q", toks)
	}

	lxc2.must("cluster", "revoke-token", "n3")
	if toks := lxc.must("cluster", "list-tokens", "A:", "--format", "csv"); strings.Contains(toks, "n3,") {
		t.Fatalf("member 1 still lists a token revoked through member 2: %q", toks)
	}

	// Each member shows its own listener address (kept in its local.db), not the last
	// one any member wrote; a global key set through member 2 reaches member 1 within
	// its 2 s reload.
	c1, c2 := d.serverConfigMap(), d2.serverConfigMap()
	if c1["core.https_address"] == "" || c1["core.https_address"] == c2["core.https_address"] || c2["core.https_address"] != c2["cluster.https_address"] {
		t.Fatalf("members' addresses: member 1 %v, member 2 %v", c1, c2)
	}

	code, env = d2.raw("PATCH", "/1.0", strings.NewReader(`{"config":{"core.remote_token_expiry":"7H"}}`))
	if code != http.StatusOK {
		t.Fatalf("setting a global key through member 2: %d %s", code, env.Error)
	}

	deadline := time.Now().Add(8 * time.Second)
	for d.serverConfigMap()["core.remote_token_expiry"] != "7H" {
		if time.Now().After(deadline) {
			t.Fatalf("member 1 did not take in member 2's core.remote_token_expiry: %v", d.serverConfigMap())
		}

		time.Sleep(200 * time.Millisecond)
	}

	if c1 = d.serverConfigMap(); c1["core.https_address"] == c2["core.https_address"] {
		t.Fatalf("member 1's address changed with member 2's write: %v", c1)
	}
}

// serverConfigMap is GET /1.0's config.
func (d *daemon) serverConfigMap() map[string]string {
	d.t.Helper()
	_, env := d.raw("GET", "/1.0", nil)
	var srv api.Server
	err := json.Unmarshal(env.Metadata, &srv)
	if err != nil {
		d.t.Fatal(err)
	}

	out := map[string]string{}
	for k, v := range srv.Config {
		out[k] = fmt.Sprint(v)
	}

	return out
}

// An enable that fails (here: the raft port, the API port + 1, is taken) leaves the host
// unclustered and working: no dqlite directory, no local.db, berth.db still written to.
func TestClusterEnableFailureLeavesHostWorking(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	var blocker net.Listener
	var addr string
	for try := 0; try < 10 && blocker == nil; try++ {
		addr = d.listenHTTPS()
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+1)))
		if err == nil {
			blocker = l
		}
	}

	if blocker == nil {
		t.Fatal("no API port with a free port above it")
	}

	defer func() { _ = blocker.Close() }()
	code, env := d.raw("PUT", "/1.0/cluster", strings.NewReader(`{"server_name":"n1","enabled":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("enable: %d %s", code, env.Error)
	}

	code, env = d.raw("GET", env.Operation+"/wait?timeout=150", nil)
	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	if code != http.StatusOK || op.StatusCode != api.Failure {
		t.Fatalf("enable with the raft port taken: %d %+v", code, op)
	}

	t.Logf("enable failed as it should: %s", op.Err)
	time.Sleep(2 * time.Second) // a restart would have happened by now
	code, env = d.raw("GET", "/1.0/cluster", nil)
	var c api.Cluster
	_ = json.Unmarshal(env.Metadata, &c)
	if code != http.StatusOK || c.Enabled {
		t.Fatalf("after a failed enable: %d %+v", code, c)
	}

	for _, p := range []string{"database/global", "database/local.db", "database/berth.db.pre-cluster", "cluster.crt"} {
		_, err := os.Stat(filepath.Join(d.dir, p))
		if !os.IsNotExist(err) {
			t.Errorf("%s left after a failed enable: %v", p, err)
		}
	}

	// The file database takes writes again (its writer was given back).
	d.berth("profile", "create", "after")
	if profs := d.berth("profile", "list"); !strings.Contains(profs, "after") {
		t.Fatalf("profile list after a failed enable: %q", profs)
	}

	// And a second attempt with the port free succeeds.
	_ = blocker.Close()
	code, env = d.raw("PUT", "/1.0/cluster", strings.NewReader(`{"server_name":"n1","enabled":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("second enable: %d %s", code, env.Error)
	}

	d.waitClustered("n1")
	if profs := d.berth("profile", "list"); !strings.Contains(profs, "after") {
		t.Fatalf("profile made after the failed enable is lost: %q", profs)
	}
}
