package gateway

import (
	"context"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"
)

const netnsEnv = "BERTH_GATEWAY_TEST_NETNS"

// TestBlackholedLeader drops every packet to and from the leader (nftables, in a
// network namespace of the test's own) and requires writes through a survivor to
// resume within 5 s: the leader search must not wait on the silent member (200 ms
// dial) and connections to it must not come back from the pool. When the rule goes,
// the old leader follows the new one.
func TestBlackholedLeader(t *testing.T) {
	if os.Getenv(netnsEnv) != "1" {
		reexecInNetns(t, "^TestBlackholedLeader$")
		return
	}

	run := func(args ...string) {
		out, err := osexec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}

	run("ip", "link", "set", "lo", "up")

	ctx := context.Background()
	cert := newCert(t)
	cfg := func() Config {
		return Config{Dir: filepath.Join(t.TempDir(), "global"), Address: freeAddr(t), Cert: cert}
	}

	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	first, err := Bootstrap(bctx, cfg())
	if err != nil {
		t.Fatal(err)
	}

	gws := []*Gateway{first}
	t.Cleanup(func() { closeAll(gws) })

	for range 2 {
		g, err := Join(bctx, cfg(), []string{first.Address()})
		if err != nil {
			t.Fatal(err)
		}

		gws = append(gws, g)
	}

	waitVoters(t, first, 3)

	err = exec(ctx, first.DB(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		t.Fatal(err)
	}

	l := leaderIndex(t, gws)
	old := gws[l]
	survivor := gws[(l+1)%3]
	err = exec(ctx, survivor.DB(), "INSERT INTO t (v) VALUES ('before')")
	if err != nil {
		t.Fatal(err)
	}

	// Everything to and from the leader's raft port: members' raft messages to it,
	// clients' requests and its answers. (Its own outgoing raft connections keep
	// flowing, so it steps down for lack of acknowledgements, as a cut-off leader
	// does.) All nodes share 127.0.0.1: the kernel picks that source address for
	// any loopback destination, so addresses cannot tell nodes apart.
	_, port, _ := net.SplitHostPort(old.Address())
	run("nft", "add", "table", "inet", "blackhole")
	run("nft", "add", "chain", "inet", "blackhole", "out", "{ type filter hook output priority 0 ; }")
	run("nft", "add", "rule", "inet", "blackhole", "out", "tcp", "dport", port, "drop")
	run("nft", "add", "rule", "inet", "blackhole", "out", "tcp", "sport", port, "drop")

	start := time.Now()
	var lastErr error
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, lastErr = survivor.DB().ExecContext(wctx, "INSERT INTO t (v) VALUES ('after')")
		cancel()
		if lastErr == nil {
			break
		}

		if time.Since(start) > 5*time.Second {
			t.Fatalf("no write within 5 s of the blackhole: %v", lastErr)
		}

		time.Sleep(20 * time.Millisecond)
	}

	t.Logf("leader %s blackholed -> first write through a survivor after %v", old.Address(), time.Since(start))

	run("nft", "delete", "table", "inet", "blackhole")

	start = time.Now()
	for {
		newLeader, err := survivor.Leader(ctx)
		oldSees, err2 := old.Leader(ctx)
		if err == nil && err2 == nil && newLeader != old.Address() && oldSees == newLeader {
			t.Logf("rule removed -> old leader follows %s after %v", newLeader, time.Since(start))
			break
		}

		if time.Since(start) > 10*time.Second {
			t.Fatalf("old leader does not follow: survivor says %q (%v), old says %q (%v)", newLeader, err, oldSees, err2)
		}

		time.Sleep(50 * time.Millisecond)
	}
}

// reexecInNetns runs the named test of this binary again under `unshare -n`, in a
// network namespace of its own, as root.
func reexecInNetns(t *testing.T, run string) {
	t.Helper()

	strict := os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != ""
	_, errUnshare := osexec.LookPath("unshare")
	_, errNft := osexec.LookPath("nft")
	if os.Geteuid() != 0 || errUnshare != nil || errNft != nil {
		if strict {
			t.Fatalf("needs root, unshare and nft (root: %v, unshare: %v, nft: %v)", os.Geteuid() == 0, errUnshare, errNft)
		}

		t.Skip("needs root, unshare and nft")
	}

	cmd := osexec.Command("unshare", "-n", os.Args[0], "-test.run", run, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test in the network namespace failed: %v", err)
	}
}
