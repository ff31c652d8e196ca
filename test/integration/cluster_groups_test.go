package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestClusterGroups drives the rest of the 5.0 client's cluster API on one
// three-member cluster, through the stock lxc in the hub: cluster groups (create,
// assign, list, show, edit, rename, delete, and their refusals) with placement by
// --target @group; `lxc cluster update-certificate`, after which every member serves
// the new certificate (a client pinned to it works with each, the old one is served by
// none and no longer makes a client a member) and members keep working with each other
// (forwarded list, a write through a follower, a member restarted on the new pair);
// `lxc cluster list-tokens` through a member that did not issue the token (the token
// with its secret, once); and `lxc cluster remove`, after which the removed member is a standalone server of its
// own (server_clustered false, its own certificate, no cluster files), while a member
// holding an instance is not removed without force.
func TestClusterGroups(t *testing.T) {
	parallel(t)
	c := newFormedCluster(t, 3, 30*time.Second)

	if !c.run(t, "groups and placement by group", func(t *testing.T) {
		c.groupsSubtest(t)
	}) {
		t.FailNow()
	}

	if !c.run(t, "cluster certificate update", func(t *testing.T) {
		c.certificateSubtest(t)
	}) {
		t.FailNow()
	}

	c.run(t, "tokens listed through every member", func(t *testing.T) {
		c.tokensSubtest(t)
	})

	c.run(t, "removed member becomes standalone", func(t *testing.T) {
		c.removalSubtest(t)
	})
}

func (c *cluster) groupsSubtest(t *testing.T) {
	// Every member starts in "default".
	var gs []api.ClusterGroup
	out := c.lxc.must("cluster", "group", "list", "m1:", "--format", "json")
	err := json.Unmarshal([]byte(out), &gs)
	if err != nil || len(gs) != 1 || gs[0].Name != "default" || !slices.Equal(gs[0].Members, []string{"m1", "m2", "m3"}) {
		t.Fatalf("lxc cluster group list of a new cluster: %v\n%s", err, out)
	}

	c.lxc.must("cluster", "group", "create", "m1:gpu")
	c.lxc.must("cluster", "group", "assign", "m1:m2", "gpu,default")
	show := c.lxc.must("cluster", "show", "m3:m2")
	if !strings.Contains(show, "- gpu") || !strings.Contains(show, "- default") {
		t.Errorf("lxc cluster show m2 after assign lacks its groups:\n%s", show)
	}

	// Placement among the group's members only, the least loaded first.
	if loc := c.launch("init", 1, 0, "g1"); loc != "m1" {
		t.Logf("g1 (no target) went to %s", loc)
	}

	c.lxc.must("init", "m1:debian/12", "m1:g2", "--target", "@gpu")
	if loc := c.location(1, "g2"); loc != "m2" {
		t.Errorf("g2 --target @gpu went to %s, want m2 (gpu's only member)", loc)
	}

	c.ack("instance", "g2")
	c.lxc.must("cluster", "group", "assign", "m1:m3", "gpu")
	c.lxc.must("init", "m1:debian/12", "m2:g3", "--target", "@gpu")
	if loc := c.location(1, "g3"); loc != "m3" {
		t.Errorf("g3 --target @gpu went to %s, want m3 (gpu's member with fewer instances)", loc)
	}

	c.ack("instance", "g3")

	// m3 left default when assigned gpu alone.
	out = c.lxc.must("cluster", "group", "show", "m1:default")
	if strings.Contains(out, "- m3") || !strings.Contains(out, "- m2") {
		t.Errorf("default after assigning m3 to gpu alone:\n%s", out)
	}

	// Refusals, each changing nothing.
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"init", "m1:debian/12", "m1:g4", "--target", "@nope"}, `cluster group "nope" not found`},
		{[]string{"cluster", "group", "delete", "m1:default"}, "cannot be deleted"},
		{[]string{"cluster", "group", "delete", "m1:gpu"}, "only empty cluster groups"},
		{[]string{"cluster", "group", "rename", "m1:default", "other"}, "cannot be renamed"},
		{[]string{"cluster", "group", "create", "m1:gpu"}, "already exists"},
		{[]string{"cluster", "group", "assign", "m1:m2", "nope"}, `cluster group "nope" not found`},
		{[]string{"cluster", "group", "show", "m1:nope"}, "not found"},
	}
	for _, r := range refused {
		out, err := c.lxc.run(r.args...)
		if err == nil || !strings.Contains(out, r.want) {
			t.Errorf("lxc %s: %v %s, want a refusal mentioning %q", strings.Join(r.args, " "), err, out, r.want)
		}
	}

	if _, err := c.lxc.run("info", "m1:g4"); err == nil {
		t.Error("g4 exists after its create was refused")
	}

	// Rename, edit (m2 leaves: it is in default too), then an empty group goes.
	c.lxc.must("cluster", "group", "rename", "m1:gpu", "fast")
	out, err = c.lxcStdin("description: quick ones\nmembers:\n- m3\n", "cluster", "group", "edit", "m2:fast")
	if err != nil {
		t.Fatalf("lxc cluster group edit: %v\n%s", err, out)
	}

	var g api.ClusterGroup
	code, env, err := c.req(3, "GET", "/1.0/cluster/groups/fast", nil, 10*time.Second)
	_ = json.Unmarshal(env.Metadata, &g)
	if err != nil || code != http.StatusOK || g.Description != "quick ones" || !slices.Equal(g.Members, []string{"m3"}) {
		t.Errorf("group fast after edit: %d %v %+v", code, err, g)
	}

	c.lxc.must("cluster", "group", "assign", "m1:m3", "default")
	c.lxc.must("cluster", "group", "delete", "m1:fast")
	out = c.lxc.must("cluster", "group", "list", "m3:", "--format", "csv")
	if strings.Contains(out, "fast") {
		t.Errorf("group fast listed after delete:\n%s", out)
	}
}

// lxcStdin runs the hub's lxc with stdin (an editor's input).
func (c *cluster) lxcStdin(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + c.lxc.netns, "--", c.lxc.bin}, args...)...)
	cmd.Env = c.lxc.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// servedCert is the certificate member i serves at its API address, seen from the hub,
// and the answer to GET /1.0/cluster/groups (administrators only) of a client presenting client (nil: none).
func (c *cluster) servedCert(t *testing.T, i int, client *tls.Certificate) (fp string, code int) {
	t.Helper()
	err := inNetnsPath(c.net.Path(0), func() error {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec // the test reads what is served
		if client != nil {
			cfg.Certificates = []tls.Certificate{*client}
		}

		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.net.APIAddr(i), cfg)
		if err != nil {
			return err
		}

		defer func() { _ = conn.Close() }()
		fp = listener.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw)
		// On this connection: an http.Transport would dial from another thread, outside
		// the hub's namespace.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write([]byte("GET /1.0/cluster/groups HTTP/1.1\r\nHost: member\r\nConnection: close\r\n\r\n"))
		if err != nil {
			return err
		}

		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}

		code = resp.StatusCode
		return resp.Body.Close()
	})
	if err != nil {
		t.Fatalf("TLS to m%d: %v", i, err)
	}

	return fp, code
}

func (c *cluster) certificateSubtest(t *testing.T) {
	m1 := c.member(1)
	oldPair, err := tls.LoadX509KeyPair(filepath.Join(m1.dir, "cluster.crt"), filepath.Join(m1.dir, "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}

	oldFP := listener.Fingerprint(oldPair.Certificate[0])
	for i := 1; i <= 3; i++ {
		fp, code := c.servedCert(t, i, &oldPair)
		// Positive control: before the update the old pair is the members' identity.
		if fp != oldFP || code != http.StatusOK {
			t.Fatalf("before the update m%d serves %s (want the cluster's %s) and a client with the cluster pair gets %d",
				i, fp[:12], oldFP[:12], code)
		}
	}

	dir := t.TempDir()
	certPEM, keyPEM := newPair(t)
	certFile, keyFile := filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key")
	_ = os.WriteFile(certFile, certPEM, 0o600)
	_ = os.WriteFile(keyFile, keyPEM, 0o600)
	garbage := filepath.Join(dir, "garbage.key")
	_ = os.WriteFile(garbage, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	_, otherKey := newPair(t)
	other := filepath.Join(dir, "other.key")
	_ = os.WriteFile(other, otherKey, 0o600)

	for _, k := range []string{garbage, other} {
		out, err := c.lxc.run("cluster", "update-certificate", "m1:", certFile, k)
		if err == nil || !strings.Contains(out, "cluster certificate") {
			t.Errorf("update-certificate with a bad key: %v %s, want a refusal", err, out)
		}
	}

	if fp, _ := c.servedCert(t, 2, nil); fp != oldFP {
		t.Fatalf("a refused update changed what m2 serves")
	}

	t0 := time.Now()
	c.lxc.must("cluster", "update-certificate", "m1:", certFile, keyFile)
	t.Logf("certificate update took %v", time.Since(t0))
	newPairTLS, _ := tls.X509KeyPair(certPEM, keyPEM)
	newFP := listener.Fingerprint(newPairTLS.Certificate[0])
	for i := 1; i <= 3; i++ {
		fp, code := c.servedCert(t, i, &oldPair)
		if fp != newFP {
			t.Errorf("m%d serves %s after the update, want the new %s (old %s)", i, fp[:12], newFP[:12], oldFP[:12])
		}

		if code != http.StatusForbidden {
			t.Errorf("m%d answers a client presenting the old cluster pair with %d after the update, want 403", i, code)
		}

		// The hub's lxc pinned m1 on the new certificate (update-certificate rewrote its
		// pin); pin every member so.
		err = os.WriteFile(filepath.Join(c.lxc.conf, "servercerts", memberName(i)+".crt"), certPEM, 0o644)
		if err != nil {
			t.Fatal(err)
		}

		c.lxc.must("info", memberName(i)+":")
	}

	// Members still work with each other: a list through m3 reaches every member, a
	// write through a follower commits, and a member restarted on the new pair rejoins.
	var insts []api.Instance
	out := c.lxc.must("list", "m3:", "--format", "json")
	_ = json.Unmarshal([]byte(out), &insts)
	for _, in := range insts {
		if in.Status == "Error" {
			t.Errorf("after the update %s on %s lists as Error through m3", in.Name, in.Location)
		}
	}

	err = c.createProfile(2, "after-cert", 10*time.Second)
	if err != nil {
		t.Errorf("a write through m2 after the update: %v", err)
	}

	c.kill(3, 15)
	err = c.restart(3)
	if err != nil {
		t.Fatalf("restarting m3: %v", err)
	}

	c.waitClustered(3)
	if fp, _ := c.servedCert(t, 3, nil); fp != newFP {
		t.Errorf("m3 serves %s after a restart, want the new certificate", fp[:12])
	}

	err = c.createProfile(3, "after-restart", 20*time.Second)
	if err != nil {
		t.Errorf("a write through the restarted m3: %v", err)
	}

	c.checkAcked(1, 2, 3)
}

// newPair is a fresh ECDSA P-384 certificate and key, as a cluster's.
func newPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "rotated cluster"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames: []string{"rotated"},
	}

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (c *cluster) removalSubtest(t *testing.T) {
	// A member holding an instance is not removed without force, as in LXD.
	out, err := c.lxc.run("cluster", "remove", "m1:m2")
	if err == nil || !strings.Contains(out, "still has") {
		t.Errorf("removing m2, which holds g2: %v %s, want a refusal", err, out)
	}

	if ms, _ := c.members(1); !slices.ContainsFunc(ms, func(m api.ClusterMember) bool { return m.ServerName == "m2" }) {
		t.Error("m2 is gone after its removal was refused")
	}

	// m3 emptied, then removed: it is told and resets itself.
	c.lxc.must("delete", "m1:g3")
	m3 := c.member(3)
	ownFP := fileFingerprint(t, filepath.Join(m3.dir, "server.crt"))
	c.lxc.must("cluster", "remove", "m1:m3")
	if ms, _ := c.members(1); slices.ContainsFunc(ms, func(m api.ClusterMember) bool { return m.ServerName == "m3" }) {
		t.Error("m3 still listed after its removal")
	}

	var srv api.Server
	err = testutil.WaitFor(30*time.Second, 200*time.Millisecond, func() (bool, error) {
		code, env, err := c.req(3, "GET", "/1.0", nil, 3*time.Second)
		if err != nil {
			return false, err
		}

		srv = api.Server{}
		_ = json.Unmarshal(env.Metadata, &srv)
		return code == http.StatusOK && !srv.Environment.ServerClustered, nil
	})
	if err != nil {
		t.Fatalf("m3 does not say it is standalone after its removal: %v %+v\n%s", err, srv.Environment, tail(m3.log.String(), 30))
	}

	if srv.Environment.CertificateFingerprint != ownFP {
		t.Errorf("standalone m3 shows certificate %s, want its own server certificate %s", srv.Environment.CertificateFingerprint, ownFP)
	}

	if fp, _ := c.servedCert(t, 3, nil); fp != ownFP {
		t.Errorf("standalone m3 serves %s at its address, want its own certificate %s", fp, ownFP)
	}

	for _, f := range []string{"cluster.crt", "cluster.key", "database/global", "database/local.db"} {
		if _, err := os.Stat(filepath.Join(m3.dir, f)); err == nil {
			t.Errorf("standalone m3 still has %s", f)
		}
	}

	code, env, _ := c.req(3, "GET", "/1.0/instances", nil, 5*time.Second)
	var urls []string
	_ = json.Unmarshal(env.Metadata, &urls)
	if code != http.StatusOK || len(urls) != 0 {
		t.Errorf("standalone m3's instances: %d %v (want none: a fresh inventory, as LXD's)", code, urls)
	}

	// The cluster goes on without it.
	err = c.createProfile(2, "after-removal", 20*time.Second)
	if err != nil {
		t.Errorf("a write through m2 after m3's removal: %v", err)
	}
}

// fileFingerprint is the fingerprint of the PEM certificate in path.
func fileFingerprint(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s holds no PEM", path)
	}

	return listener.Fingerprint(b.Bytes)
}

func (c *cluster) tokensSubtest(t *testing.T) {
	tok := c.token("m9") // issued by m1
	for i := 1; i <= 3; i++ {
		out := c.lxc.must("cluster", "list-tokens", memberName(i)+":", "--format", "csv")
		rows := 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "m9,") {
				rows++
				if !strings.Contains(l, tok) {
					t.Errorf("list-tokens through m%d shows m9 without its token %s: %s", i, tok, l)
				}
			}
		}

		if rows != 1 {
			t.Errorf("list-tokens through m%d lists m9 %d times, want once:\n%s", i, rows, out)
		}
	}

	c.lxc.must("cluster", "revoke-token", "m2:m9")
	if out := c.lxc.must("cluster", "list-tokens", "m1:", "--format", "csv"); strings.Contains(out, "m9,") {
		t.Errorf("m9's token still listed through m1 after its revocation through m2:\n%s", out)
	}
}
