package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClusterNet is the network a test cluster runs on: a hub network namespace holding a
// bridge, and one network namespace per member joined to the hub by a veth pair. Member
// i (from 1) is 10.251.0.i/24 on its eth0; the hub is 10.251.0.254 on the bridge. Each
// member has a namespace of its own as a real host has (its own berthbr0, its own
// nftables, its own ports: API on 8443, raft on 8444), and nothing of this touches the
// host's network namespace: every link is made inside the namespaces, so parallel runs
// and the host's own bridges never collide.
//
//	n := testutil.NewClusterNetT(t, 3)
//	cmd := n.Command(1, berthd, "--dir", dir)   // berthd in member 1's namespace
//	n.Command(0, "lxc", "list", "m1:")          // the stock client, in the hub
//	n.DropRaft(1)                               // blackhole member 1's raft traffic
//
// Use it from a test with NewClusterNetT (cleanup registered, loud in CI when root, ip or
// nsenter are missing), from elsewhere with NewClusterNet and Close.
type ClusterNet struct {
	Prefix  string   // names of the namespaces start with it
	Netns   []string // namespace names: [0] the hub, [i] member i
	Members int
}

// Cluster addressing shared by the harness and the daemons it starts.
const (
	ClusterSubnet   = "10.251.0"
	ClusterHubIP    = ClusterSubnet + ".254"
	ClusterAPIPort  = 8443
	ClusterRaftPort = 8444
	clusterBridge   = "hub0"
	clusterNftTable = "berthtest"
)

// IP is member i's address.
func (n *ClusterNet) IP(i int) string { return fmt.Sprintf("%s.%d", ClusterSubnet, i) }

// APIAddr is member i's HTTPS API address (its core.https_address and
// cluster.https_address).
func (n *ClusterNet) APIAddr(i int) string {
	return fmt.Sprintf("%s:%d", n.IP(i), ClusterAPIPort)
}

// Path is the bind mount of namespace i (0: the hub), for nsenter --net= or setns.
func (n *ClusterNet) Path(i int) string { return filepath.Join("/run/netns", n.Netns[i]) }

// NewClusterNetT makes the network for members members, removed in t.Cleanup. Without
// root, ip, nsenter or nft it skips t, or fails it in strict mode.
func NewClusterNetT(t testing.TB, members int) *ClusterNet {
	t.Helper()
	RequireRoot(t, "create network namespaces")
	LookPath(t, "ip", "Debian package iproute2")
	LookPath(t, "nsenter", "Debian package util-linux")
	LookPath(t, "nft", "Debian package nftables")

	n, err := NewClusterNet(members)
	if err != nil {
		t.Fatalf("cluster network: %v", err)
	}

	t.Cleanup(func() {
		for _, p := range n.Close() {
			t.Errorf("cluster network cleanup: %s", p)
		}
	})

	return n
}

// NewClusterNet makes the hub and member namespaces. On error what was made is removed.
func NewClusterNet(members int) (_ *ClusterNet, err error) {
	if members < 1 || members > 250 {
		return nil, fmt.Errorf("members %d: want 1..250", members)
	}

	// Unique per process and per call; short enough for interface-name-sized uses.
	n := &ClusterNet{Prefix: fmt.Sprintf("btc%d-%d-", os.Getpid(), time.Now().UnixNano()%100000), Members: members}
	defer func() {
		if err != nil {
			for _, p := range n.Close() {
				err = fmt.Errorf("%w (cleanup: %s)", err, p)
			}
		}
	}()

	n.Netns = append(n.Netns, n.Prefix+"hub")
	for i := 1; i <= members; i++ {
		n.Netns = append(n.Netns, fmt.Sprintf("%sm%d", n.Prefix, i))
	}

	for _, ns := range n.Netns {
		err = run("ip", "netns", "add", ns)
		if err != nil {
			return n, err
		}

		err = run("ip", "-n", ns, "link", "set", "lo", "up")
		if err != nil {
			return n, err
		}
	}

	hub := n.Netns[0]
	steps := [][]string{
		{"ip", "-n", hub, "link", "add", clusterBridge, "type", "bridge"},
		{"ip", "-n", hub, "addr", "add", ClusterHubIP + "/24", "dev", clusterBridge},
		{"ip", "-n", hub, "link", "set", clusterBridge, "up"},
	}

	for i := 1; i <= members; i++ {
		port := fmt.Sprintf("p%d", i)
		steps = append(steps,
			// Made in the hub, the peer moved into the member at once: no name ever
			// exists in the host's namespace.
			[]string{"ip", "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.Netns[i]},
			[]string{"ip", "-n", hub, "link", "set", port, "master", clusterBridge},
			[]string{"ip", "-n", hub, "link", "set", port, "up"},
			[]string{"ip", "-n", n.Netns[i], "addr", "add", n.IP(i) + "/24", "dev", "eth0"},
			[]string{"ip", "-n", n.Netns[i], "link", "set", "eth0", "up"},
		)
	}

	for _, s := range steps {
		err = run(s[0], s[1:]...)
		if err != nil {
			return n, err
		}
	}

	return n, nil
}

// Command is name run inside namespace i (0: the hub) through nsenter, which execs it:
// the command's pid is the program's own (a signal to it reaches the program).
func (n *ClusterNet) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.Path(i), "--", name}, args...)...)
}

// CommandContext is Command bound to ctx.
func (n *ClusterNet) CommandContext(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.Path(i), "--", name}, args...)...)
}

// DropRaft blackholes the raft traffic of member i inside its own namespace: every TCP
// packet from or to port 8444 is dropped, in and out, so its raft server and its raft
// client connections are silent while its HTTPS API still answers (a partition, not a
// crash: nothing is refused, packets just vanish). UndropRaft removes the rule.
func (n *ClusterNet) DropRaft(i int) error {
	p := strconv.Itoa(ClusterRaftPort)
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in {
		type filter hook input priority -300; policy accept;
		tcp dport %[2]s drop
		tcp sport %[2]s drop
	}
	chain out {
		type filter hook output priority -300; policy accept;
		tcp dport %[2]s drop
		tcp sport %[2]s drop
	}
}
`, clusterNftTable, p)
	cmd := n.Command(i, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %w: %s", n.Netns[i], err, strings.TrimSpace(string(out)))
	}

	return nil
}

// UndropRaft removes DropRaft's rules from member i.
func (n *ClusterNet) UndropRaft(i int) error {
	out, err := n.Command(i, "nft", "delete", "table", "inet", clusterNftTable).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %w: %s", n.Netns[i], err, strings.TrimSpace(string(out)))
	}

	return nil
}

// reap SIGKILLs pid if it is still there after 5 s.
func reap(pid int) {
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}

	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Pids lists the processes whose network namespace is namespace i, except this one (a
// thread of ours that joined it may be the main thread: inNetns-style helpers).
func (n *ClusterNet) Pids(i int) []int {
	out, err := exec.Command("ip", "netns", "pids", n.Netns[i]).Output()
	if err != nil {
		return nil
	}

	pids := []int{}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}

	return pids
}

// Close removes every namespace. Processes still in a member's namespace were started
// there by the test's daemons (dnsmasq of its berthbr0 outlives berthd on purpose): they
// are ended by pid first, SIGTERM then SIGKILL. A berthd still running is reported as a
// problem (the caller should have stopped it). Returns what it could not clean or had to
// clean by force.
func (n *ClusterNet) Close() []string {
	problems := []string{}
	for i := range n.Netns {
		if _, err := os.Stat(n.Path(i)); err != nil {
			continue
		}

		for _, pid := range n.Pids(i) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			c := strings.TrimSpace(string(comm))
			switch {
			case c == "lxcfs":
				// Host-wide, shared by every berthd (and adopted by later ones): a
				// member may have been the one to start it. Its namespace does not
				// matter to it; the test binary's TestMain stops it at the end.
				continue
			case c != "dnsmasq":
				problems = append(problems, fmt.Sprintf("process %d (%s) still in %s, killed", pid, c, n.Netns[i]))
			}

			_ = syscall.Kill(pid, syscall.SIGTERM)
			go reap(pid)
		}

		err := run("ip", "netns", "del", n.Netns[i])
		if err != nil {
			problems = append(problems, err.Error())
		}
	}

	return problems
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}

	return nil
}

// ErrTimeout is what WaitFor returns when cond never held.
var ErrTimeout = errors.New("timed out")

// WaitFor polls cond every interval until it returns true or timeout passes; it
// returns the last error cond gave (wrapped in ErrTimeout) on timeout.
func WaitFor(timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}

		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
			}

			return fmt.Errorf("%w after %s", ErrTimeout, timeout)
		}

		time.Sleep(interval)
	}
}
