package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// newCert makes a self-signed certificate like a member's server certificate.
func newCert(t testing.TB) tls.Certificate {
	t.Helper()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "berth cluster test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// freeAddr returns a loopback address with a port nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = l.Close() }()

	return l.Addr().String()
}

func testConfig(t testing.TB, cert tls.Certificate) Config {
	return Config{Dir: filepath.Join(t.TempDir(), "global"), Address: freeAddr(t), Cert: cert}
}

// startCluster bootstraps one node and joins n-1 more, each closed at cleanup.
func startCluster(t *testing.T, n int) []*Gateway {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cert := newCert(t)
	first, err := Bootstrap(ctx, testConfig(t, cert))
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	gws := []*Gateway{first}
	t.Cleanup(func() { closeAll(gws) })

	for range n - 1 {
		g, err := Join(ctx, testConfig(t, cert), []string{first.Address()})
		if err != nil {
			t.Fatalf("join: %v", err)
		}

		gws = append(gws, g)
	}

	if n >= 3 {
		waitVoters(t, first, 3)
	}

	return gws
}

var closed = map[*Gateway]bool{}

func closeGW(t *testing.T, g *Gateway) {
	t.Helper()

	if closed[g] {
		return
	}

	closed[g] = true
	err := g.Close()
	if err != nil {
		t.Errorf("closing %s: %v", g.Address(), err)
	}
}

func closeAll(gws []*Gateway) {
	for _, g := range gws {
		if !closed[g] {
			closed[g] = true
			_ = g.Close()
		}
	}
}

func waitVoters(t *testing.T, g *Gateway, want int) {
	t.Helper()

	deadline := time.Now().Add(15 * time.Second)
	for {
		members, err := g.Members(context.Background())
		voters := 0
		for _, m := range members {
			if m.Role == "voter" {
				voters++
			}
		}

		if err == nil && voters >= want {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d voters: members %+v, err %v", want, members, err)
		}

		time.Sleep(50 * time.Millisecond)
	}
}

func exec(ctx context.Context, db *sql.DB, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	_, err := db.ExecContext(ctx, query, args...)

	return err
}

func TestRaftAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1:8443":   "10.0.0.1:8444",
		"[fd00::1]:8443":  "[fd00::1]:8444",
		"node1:443":       "node1:444",
		"10.0.0.1":        "",
		":8443":           "",
		"10.0.0.1:65535":  "",
		"10.0.0.1:banana": "",
	} {
		got, err := RaftAddress(in)
		if want == "" {
			if err == nil {
				t.Errorf("RaftAddress(%q) = %q, want an error", in, got)
			}

			continue
		}

		if err != nil || got != want {
			t.Errorf("RaftAddress(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}

func TestSingleNode(t *testing.T) {
	ctx := context.Background()
	g := startCluster(t, 1)[0]
	db := g.DB()

	err := exec(ctx, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, p INTEGER REFERENCES t(id))")
	if err != nil {
		t.Fatal(err)
	}

	err = exec(ctx, db, "INSERT INTO t (name) VALUES (?)", "a")
	if err != nil {
		t.Fatal(err)
	}

	// A unique violation arrives as a SQLite code lxd/db can read, and is not transient.
	err = exec(ctx, db, "INSERT INTO t (name) VALUES (?)", "a")
	var ge *Error
	if !errors.As(err, &ge) || ge.SQLiteCode()&0xff != 19 || IsTransient(err) {
		t.Fatalf("duplicate insert = %#v, want a constraint *Error, not transient", err)
	}

	t.Logf("unique violation: code %d, %q", ge.Code, ge.Message)

	// Foreign keys are on for every connection.
	err = exec(ctx, db, "INSERT INTO t (name, p) VALUES (?, ?)", "b", 99)
	if err == nil {
		t.Fatal("insert with a dangling foreign key succeeded: foreign keys are off")
	}

	leader, err := g.Leader(ctx)
	if err != nil || leader != g.Address() {
		t.Fatalf("Leader = %q, %v, want %q", leader, err, g.Address())
	}

	members, err := g.Members(ctx)
	if err != nil || len(members) != 1 || !members[0].Leader || members[0].Role != "voter" || members[0].ID != g.ID() {
		t.Fatalf("Members = %+v, %v", members, err)
	}
}

// TestReopen restarts a node from its directory and finds its data.
func TestReopen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := testConfig(t, newCert(t))
	g, err := Bootstrap(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	err = exec(ctx, g.DB(), "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')")
	if err != nil {
		t.Fatal(err)
	}

	err = g.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = Bootstrap(ctx, cfg)
	if err == nil {
		t.Fatal("Bootstrap over an existing node succeeded")
	}

	cfg.Address = ""
	g, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Close() })

	err = g.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var v string
	err = g.DB().QueryRowContext(ctx, "SELECT v FROM t").Scan(&v)
	if err != nil || v != "kept" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
}

func TestThreeNodes(t *testing.T) {
	ctx := context.Background()
	gws := startCluster(t, 3)

	err := exec(ctx, gws[0].DB(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		t.Fatal(err)
	}

	for i, g := range gws {
		err = exec(ctx, g.DB(), "INSERT INTO t (v) VALUES (?)", fmt.Sprint("through ", i))
		if err != nil {
			t.Fatalf("write through node %d: %v", i, err)
		}
	}

	var n int
	err = gws[2].DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n)
	if err != nil || n != 3 {
		t.Fatalf("read through node 2: %d rows, %v", n, err)
	}

	members, err := gws[2].Members(ctx)
	if err != nil {
		t.Fatal(err)
	}

	leaders := 0
	for _, m := range members {
		if m.Leader {
			leaders++
		}
	}

	if len(members) != 3 || leaders != 1 {
		t.Fatalf("Members = %+v, want 3 with one leader", members)
	}

	// A follower leaves: stopped, then removed through another member.
	l := leaderIndex(t, gws)
	leaving := gws[(l+1)%3]
	closeGW(t, leaving)

	err = gws[l].Remove(ctx, leaving.Address())
	if err != nil {
		t.Fatal(err)
	}

	members, err = gws[l].Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("Members after Remove = %+v, %v", members, err)
	}

	err = gws[l].Remove(ctx, leaving.Address())
	if err == nil {
		t.Fatal("removing an unknown address succeeded")
	}
}

// leaderIndex returns which of gws leads.
func leaderIndex(t *testing.T, gws []*Gateway) int {
	t.Helper()

	addr, err := gws[0].Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	for i, g := range gws {
		if g.Address() == addr {
			return i
		}
	}

	t.Fatalf("leader %q is none of the nodes", addr)

	return -1
}

// writeUntil retries a write the way lxd/db does (transient errors only) and returns
// how long it took to succeed.
func writeUntil(t *testing.T, db *sql.DB, limit time.Duration) time.Duration {
	t.Helper()

	start := time.Now()
	for {
		err := exec(context.Background(), db, "INSERT INTO t (v) VALUES ('after')")
		if err == nil {
			return time.Since(start)
		}

		if !IsTransient(err) {
			t.Fatalf("write after %v: %v (not transient)", time.Since(start), err)
		}

		if time.Since(start) > limit {
			t.Fatalf("no write within %v: %v", limit, err)
		}

		time.Sleep(10 * time.Millisecond)
	}
}

func TestFailover(t *testing.T) {
	ctx := context.Background()
	gws := startCluster(t, 3)

	err := exec(ctx, gws[0].DB(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		t.Fatal(err)
	}

	l := leaderIndex(t, gws)
	survivor := gws[(l+1)%3]

	// Warm the survivor's pool: its connections point at the leader about to vanish.
	err = exec(ctx, survivor.DB(), "INSERT INTO t (v) VALUES ('before')")
	if err != nil {
		t.Fatal(err)
	}

	closeGW(t, gws[l])

	took := writeUntil(t, survivor.DB(), 2*time.Second)
	t.Logf("leader closed -> first write through a survivor after %v", took)

	var n int
	err = survivor.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n)
	if err != nil || n != 2 {
		t.Fatalf("after failover: %d rows, %v", n, err)
	}
}

func TestQuorumLossFailsFast(t *testing.T) {
	ctx := context.Background()
	gws := startCluster(t, 3)

	err := exec(ctx, gws[0].DB(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		t.Fatal(err)
	}

	l := leaderIndex(t, gws)
	others := []int{(l + 1) % 3, (l + 2) % 3}
	sort.Ints(others)
	survivor := gws[others[0]]

	err = exec(ctx, survivor.DB(), "INSERT INTO t (v) VALUES ('before')")
	if err != nil {
		t.Fatal(err)
	}

	closeGW(t, gws[l])
	closeGW(t, gws[others[1]])

	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	_, err = survivor.DB().ExecContext(wctx, "INSERT INTO t (v) VALUES ('lost')")
	took := time.Since(start)
	t.Logf("2 of 3 closed -> write failed after %v: %v", took, err)

	if err == nil {
		t.Fatal("write without quorum succeeded")
	}

	// The "clear errors within a second": the survivor names the dead leader
	// until its election timeout (0.3-0.6 s), then finds the other voters unreachable.
	if took > time.Second {
		t.Fatalf("write without quorum took %v to fail, want < 1s", took)
	}

	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, ErrQuorumLost) || !IsTransient(err) {
		t.Fatalf("error = %v, want ErrNoLeader and ErrQuorumLost", err)
	}

	_, err = survivor.Leader(ctx)
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader without quorum = %v, want ErrNoLeader", err)
	}
}

// TestForeignCertificateRefused: a node with another certificate cannot join.
func TestForeignCertificateRefused(t *testing.T) {
	gws := startCluster(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	cfg := testConfig(t, newCert(t))
	g, err := Join(ctx, cfg, []string{gws[0].Address()})
	if err == nil {
		_ = g.Close()
		t.Fatal("a node with a foreign certificate joined")
	}

	_, err = os.Stat(cfg.Dir)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed join left its directory behind: %v", err)
	}

	members, err := gws[0].Members(context.Background())
	if err != nil || len(members) != 1 {
		t.Fatalf("members after refused join: %+v, %v", members, err)
	}
}

func TestHandover(t *testing.T) {
	ctx := context.Background()
	gws := startCluster(t, 3)

	err := exec(ctx, gws[0].DB(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		t.Fatal(err)
	}

	l := leaderIndex(t, gws)
	survivor := gws[(l+1)%3]

	start := time.Now()
	err = gws[l].Handover(ctx)
	if err != nil {
		t.Fatal(err)
	}

	closeGW(t, gws[l])
	took := writeUntil(t, survivor.DB(), time.Second)
	t.Logf("handover + close took %v, then first write after %v", time.Since(start)-took, took)
}

// TestTwoBootstrapsSideBySide: every bootstrapped node has the same id, and go-dqlite
// names its local socket after it; two at once must not collide.
func TestTwoBootstrapsSideBySide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cert := newCert(t)
	for range 2 {
		g, err := Bootstrap(ctx, testConfig(t, cert))
		if err != nil {
			t.Fatalf("second bootstrap beside the first: %v", err)
		}

		t.Cleanup(func() { _ = g.Close() })
	}
}

// TestTwoNodes: the second of two members stays a spare (raft tells spares nothing),
// yet it finds the leader, lists the members and writes.
func TestTwoNodes(t *testing.T) {
	ctx := context.Background()
	gws := startCluster(t, 2)

	leader, err := gws[1].Leader(ctx)
	if err != nil || leader != gws[0].Address() {
		t.Fatalf("Leader through the spare = %q, %v, want %q", leader, err, gws[0].Address())
	}

	members, err := gws[1].Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("Members through the spare = %+v, %v", members, err)
	}

	roles := map[string]string{}
	for _, m := range members {
		roles[m.Address] = m.Role
		if m.Leader != (m.Address == leader) {
			t.Errorf("member %+v: wrong leader flag", m)
		}
	}

	if roles[gws[0].Address()] != "voter" || roles[gws[1].Address()] != "spare" {
		t.Fatalf("roles = %v, want the first a voter, the second a spare", roles)
	}

	err = exec(ctx, gws[1].DB(), "CREATE TABLE t (v TEXT)")
	if err != nil {
		t.Fatalf("write through the spare: %v", err)
	}
}
