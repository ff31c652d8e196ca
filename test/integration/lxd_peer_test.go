package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// lxdPeer is a real LXD 5.0.2 (Debian's lxd, run by testutil.LXDPeer as a plain process
// with its own LXD_DIR, a dir pool, no managed network) listening on HTTPS on a loopback
// port: the other side of the tests that move images and containers between LXD and
// Berth. Everything it creates goes in t.Cleanup; in CI it fails the test loudly when LXD
// cannot start.
//
//	l := startLXDPeer(t)
//	fp := l.importTestImage("debian12")
//	lxc.must("remote", "add", "L", l.token(t, "cli"))   // then lxc ... L:debian12 ...
//	l.must("init", fp, l.Prefix+"c1")                    // instance names: l.Prefix first
type lxdPeer struct {
	*testutil.LXDPeer
	t *testing.T
}

// startLXDPeer starts an LXD peer for t.
func startLXDPeer(t *testing.T) *lxdPeer {
	t.Helper()
	return &lxdPeer{LXDPeer: testutil.StartLXDPeerT(t, testutil.LXDPeerConfig{HTTPS: true}), t: t}
}

// run runs the peer's administrator lxc (its unix socket) and returns its output.
func (l *lxdPeer) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return l.Lxc(ctx, args...)
}

// must is run, failing t on error.
func (l *lxdPeer) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatalf("LXD peer: %v", err)
	}

	return out
}

// token is a join token for a client named name (`lxc remote add X TOKEN`).
func (l *lxdPeer) token(t *testing.T, name string) string {
	t.Helper()
	tok, err := l.Token(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	return tok
}

// importTestImage imports the test image (Berth's unified tarball) under alias and
// returns its fingerprint.
func (l *lxdPeer) importTestImage(alias string) string {
	l.t.Helper()
	l.must("image", "import", imagePath, "--alias", alias)
	return l.fingerprintOf(alias)
}

// fingerprintOf is the fingerprint of the peer's image named by alias or fingerprint
// prefix, "" when it has none.
func (l *lxdPeer) fingerprintOf(name string) string {
	l.t.Helper()
	out, err := l.run("image", "info", name)
	if err != nil {
		return ""
	}

	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Fingerprint: "); ok {
			return strings.TrimSpace(v)
		}
	}

	return ""
}
