package integration

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// privateLXD is Debian's real LXD 5.0.2 listening on HTTPS on a loopback port
// (testutil.LXDPeer, see lxd_peer_test.go): the reference server the CLI's remote code
// is checked against besides berthd.
type privateLXD struct {
	*testutil.LXDPeer
}

// startPrivateLXD starts an LXD with an HTTPS listener, stopped and removed in
// t.Cleanup. Without lxd the test fails in strict mode (CI), else skips.
func startPrivateLXD(t *testing.T) *privateLXD {
	t.Helper()
	return &privateLXD{testutil.StartLXDPeerT(t, testutil.LXDPeerConfig{HTTPS: true})}
}

// url is the HTTPS address the CLI adds.
func (l *privateLXD) url() string { return l.URL() }

// lxc runs the server-side, fully trusted client (over the unix socket).
func (l *privateLXD) lxc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return l.Lxc(ctx, args...)
}

// token makes a join token with `lxc config trust add --name NAME -q`.
func (l *privateLXD) token(t *testing.T, name string) string {
	t.Helper()
	tok, err := l.Token(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	return tok
}

// createEmpty creates an instance without a root filesystem (never started).
func (l *privateLXD) createEmpty(t *testing.T, name string) {
	t.Helper()

	_, err := l.lxc("init", "--empty", name)
	if err != nil {
		t.Fatal(err)
	}
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	addr := ln.Addr().String()
	_ = ln.Close()

	return addr
}
