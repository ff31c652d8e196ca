package gateway

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canonical/go-dqlite/client"
	dqdriver "github.com/canonical/go-dqlite/driver"
)

// Environment of the attacker child of TestLocalSocketAttack.
const (
	attackSocketEnv = "BERTH_GATEWAY_ATTACK_SOCKET"
	attackTableEnv  = "BERTH_GATEWAY_ATTACK_TABLE"
)

// attackResult is what one attempt on the engine's local socket achieved.
type attackResult struct {
	Leader string // the leader the node named, or "err: ..."
	Read   string // the secret read, or "err: ..."
	Write  string // "ok" or "err: ..."
}

func (r attackResult) String() string {
	return fmt.Sprintf("leader=%q read=%q write=%q", r.Leader, r.Read, r.Write)
}

// attackLocalSocket speaks the dqlite client protocol to the engine's abstract unix
// socket, bypassing the TLS proxy: it asks for the leader, then opens the global
// database (every dial goes to the socket, whatever address the node names) to read
// the secret and insert a row into table.
func attackLocalSocket(socket, table string) attackResult {
	var r attackResult

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	cli, err := client.New(ctx, socket)
	if err == nil {
		var info *client.NodeInfo
		info, err = cli.Leader(ctx)
		if err == nil {
			r.Leader = info.Address
		}

		_ = cli.Close()
	}

	if err != nil {
		r.Leader = "err: " + err.Error()
	}

	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer

		return d.DialContext(ctx, "unix", socket)
	}

	store := client.NewInmemNodeStore()
	_ = store.Set(ctx, []client.NodeInfo{{Address: socket}})

	drv, err := dqdriver.New(store, dqdriver.WithDialFunc(dial),
		dqdriver.WithConnectionTimeout(2*time.Second), dqdriver.WithAttemptTimeout(time.Second))
	if err != nil {
		r.Read, r.Write = "err: "+err.Error(), "err: "+err.Error()
		return r
	}

	conn, err := drv.OpenConnector(databaseName)
	if err != nil {
		r.Read, r.Write = "err: "+err.Error(), "err: "+err.Error()
		return r
	}

	db := sql.OpenDB(conn)
	defer func() { _ = db.Close() }()

	var secret string
	err = db.QueryRowContext(ctx, "SELECT value FROM secrets WHERE id = 1").Scan(&secret)
	if err != nil {
		r.Read = "err: " + err.Error()
	} else {
		r.Read = secret
	}

	_, err = db.ExecContext(ctx, "INSERT INTO "+table+" (value) VALUES ('planted')")
	if err != nil {
		r.Write = "err: " + err.Error()
	} else {
		r.Write = "ok"
	}

	return r
}

// TestLocalSocketAttack attacks the engine's plain-text local socket from other
// processes of the same network namespace: an unprivileged one (uid 65534, as any
// host user could) and a root one. Abstract unix sockets have no file permissions;
// libdqlite (dqlite.h: "the dqlite node will accept only connections originating from
// the same process") is what must refuse them. The attack must learn nothing, read
// nothing and write nothing; the same code from inside the daemon's process (the
// positive control) reads the secret and writes to a scratch table.
func TestLocalSocketAttack(t *testing.T) {
	if socket := os.Getenv(attackSocketEnv); socket != "" {
		// The attacker child: report and let the parent judge.
		r := attackLocalSocket(socket, os.Getenv(attackTableEnv))
		fmt.Printf("ATTACK-LEADER %s\nATTACK-READ %s\nATTACK-WRITE %s\n", r.Leader, r.Read, r.Write)
		return
	}

	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != "" {
			t.Fatal("needs root (to run the attacker as another uid)")
		}

		t.Skip("needs root (to run the attacker as another uid)")
	}

	ctx := context.Background()
	g := startCluster(t, 1)[0]
	db := g.DB()

	for _, q := range []string{
		"CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT NOT NULL)",
		"INSERT INTO secrets (value) VALUES ('the-secret')",
		"CREATE TABLE scratch (id INTEGER PRIMARY KEY, value TEXT NOT NULL)",
	} {
		err := exec(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
	}

	// The socket the gateway names is the one the engine listens on.
	if !abstractSocketListening(t, g.socket) {
		t.Fatalf("engine socket %q not in /proc/net/unix", g.socket)
	}

	// Positive control: inside the daemon's process the attack code works.
	ctl := attackLocalSocket(g.socket, "scratch")
	t.Logf("control (same process): %s", ctl)
	if ctl.Leader != g.Address() || ctl.Read != "the-secret" || ctl.Write != "ok" {
		t.Fatalf("control from the node's own process failed: %s", ctl)
	}

	bin := exposedTestBinary(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	// Positive control of the attacker child: through a relay that the node's own
	// process runs (what the engine would be without its peer check), the same child,
	// as nobody, reads the secret and writes to the scratch table.
	relay := startRelay(t, g.socket)
	got := runAttacker(t, bin, relay, "scratch", &syscall.SysProcAttr{Credential: nobody})
	t.Logf("control (other process, through an in-process relay): %v", got)
	if got["LEADER"] != g.Address() || got["READ"] != "the-secret" || got["WRITE"] != "ok" {
		t.Fatalf("attacker child through the relay failed: %v", got)
	}

	// A host user may also make user and pid namespaces of its own (keeping the
	// network namespace): pid 1 in there is still another process to the kernel's
	// SO_PEERCRED answer, which is given in the node's pid namespace.
	ownNS := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
	}

	for _, tc := range []struct {
		name string
		attr *syscall.SysProcAttr
	}{
		{"nobody", &syscall.SysProcAttr{Credential: nobody}},
		{"root", &syscall.SysProcAttr{}},
		{"nobody-own-userns-pidns", ownNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runAttacker(t, bin, g.socket, "secrets", tc.attr)
			t.Logf("attacker (%s, other process): %v", tc.name, got)

			for _, k := range []string{"LEADER", "READ", "WRITE"} {
				if !strings.HasPrefix(got[k], "err: ") {
					t.Errorf("attacker's %s succeeded: %q", strings.ToLower(k), got[k])
				}
			}
		})
	}

	// The target is unchanged.
	var n int
	var value string
	err := db.QueryRowContext(ctx, "SELECT count(*), max(value) FROM secrets").Scan(&n, &value)
	if err != nil || n != 1 || value != "the-secret" {
		t.Fatalf("secrets after the attack: %d rows, %q, %v; want 1, the-secret", n, value, err)
	}

	// Both controls wrote where they were told.
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM scratch WHERE value = 'planted'").Scan(&n)
	if err != nil || n != 2 {
		t.Fatalf("scratch after the controls: %d planted rows, %v; want 2", n, err)
	}
}

// runAttacker runs the attack from a child process (the test binary again) started
// with attr and returns what it reported.
func runAttacker(t *testing.T, bin, socket, table string, attr *syscall.SysProcAttr) map[string]string {
	t.Helper()

	cmd := osexec.Command(bin, "-test.run", "^TestLocalSocketAttack$", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), attackSocketEnv+"="+socket, attackTableEnv+"="+table)
	cmd.SysProcAttr = attr

	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("attacker child: %v\n%s", err, out)
	}

	got := parseAttack(string(out))
	if len(got) != 3 {
		t.Fatalf("attacker reported %v\n%s", got, out)
	}

	return got
}

// startRelay listens on an abstract socket of its own and forwards each connection
// to target, dialled from this process.
func startRelay(t *testing.T, target string) string {
	t.Helper()

	name := fmt.Sprintf("@berth-gateway-attack-relay-%d", os.Getpid())
	l, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = l.Close() })

	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}

			out, err := net.Dial("unix", target)
			if err != nil {
				_ = in.Close()
				continue
			}

			go func() {
				_, _ = io.Copy(out, in)
				_ = out.Close()
			}()

			go func() {
				_, _ = io.Copy(in, out)
				_ = in.Close()
			}()
		}
	}()

	return name
}

// abstractSocketListening reports whether /proc/net/unix lists the abstract socket
// name ("@name") as listening.
func abstractSocketListening(t *testing.T, name string) bool {
	t.Helper()

	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening.
		fields := strings.Fields(sc.Text())
		if len(fields) == 8 && fields[7] == name && fields[3] == "00010000" {
			return true
		}
	}

	return false
}

// exposedTestBinary copies the test binary where an unprivileged uid can run it
// (go test builds it in a root-only directory).
func exposedTestBinary(t *testing.T) string {
	t.Helper()

	dir, err := os.MkdirTemp("", "berth-gateway-attack-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	err = os.Chmod(dir, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = src.Close() }()

	bin := filepath.Join(dir, "gateway.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	_, err = io.Copy(dst, src)
	errClose := dst.Close()
	if err != nil || errClose != nil {
		t.Fatalf("copying the test binary: %v, %v", err, errClose)
	}

	return bin
}

// parseAttack reads the child's ATTACK-<what> lines.
func parseAttack(out string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "ATTACK-")
		if !ok {
			continue
		}

		k, v, _ := strings.Cut(rest, " ")
		got[k] = v
	}

	return got
}
