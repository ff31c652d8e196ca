package integration

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestClusterHarness checks the cluster suite's own machinery without clustering: two
// standalone members in their own namespaces answer the stock lxc in the hub over HTTPS
// at 10.251.0.N:8443, DropRaft silences port 8444 of a member (a connection from the hub
// times out instead of being refused) and UndropRaft restores it, and cleanup leaves no
// namespace behind.
func TestClusterHarness(t *testing.T) {
	parallel(t)
	// Registered first: runs after the cluster's own cleanup.
	var prefix string
	t.Cleanup(func() {
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if prefix != "" && strings.HasPrefix(e.Name(), prefix) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	})

	c := newCluster(t, 2)
	prefix = c.net.Prefix

	for i := 1; i <= 2; i++ {
		c.lxc.must("remote", "add", memberName(i), c.member(i).trustToken("hub"))
		out := c.lxc.must("info", memberName(i)+":")
		if !strings.Contains(out, c.net.APIAddr(i)) {
			t.Errorf("lxc info m%d: does not show %s:\n%s", i, c.net.APIAddr(i), out)
		}
	}

	// A raft port stand-in in member 1's namespace.
	var ln net.Listener
	err := inNetnsPath(c.net.Path(1), func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", 8444))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}

			_ = conn.Close()
		}
	}()

	dial := func() error {
		return inNetnsPath(c.net.Path(2), func() error {
			conn, err := net.DialTimeout("tcp", c.net.IP(1)+":8444", 500*time.Millisecond)
			if err == nil {
				_ = conn.Close()
			}

			return err
		})
	}

	if err := dial(); err != nil {
		t.Fatalf("m2 cannot reach m1:8444 before the rule: %v", err)
	}

	err = c.net.DropRaft(1)
	if err != nil {
		t.Fatal(err)
	}

	err = dial()
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("with the rule, dialling m1:8444 gave %v, want a timeout (dropped, not refused)", err)
	}

	// The API port is untouched.
	c.lxc.must("info", "m1:")

	err = c.net.UndropRaft(1)
	if err != nil {
		t.Fatal(err)
	}

	if err := dial(); err != nil {
		t.Errorf("m2 cannot reach m1:8444 after the rule is removed: %v", err)
	}
}
