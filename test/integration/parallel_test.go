package integration

import (
	"os"
	"testing"
)

// parallel marks a top-level test as one that may run beside others (t.Parallel), unless
// BERTH_TEST_SERIAL is set (to rule concurrency out when chasing a failure).
//
// The suite runs in two phases, as go test does: first every test that does not call
// parallel, one at a time and alone; then the parallel ones, up to -parallel at once
// (the Makefile's TEST_PARALLEL). Most tests wait (boots, peers, deadlines) far more
// than they compute, so running several at once is most of the suite's speed.
//
// A test may call parallel when everything it touches is its own: its daemons
// (startDaemon: own state directory, bridge, cgroup parent, nftables tables), LXD peers
// (testutil.StartLXDPeerT), cluster networks (own namespaces), loopback ports picked
// free, host interface names made unique (testNetName), and when what it asserts holds
// under load: no ratios between measurements, no latency bound of a few seconds.
// It must stay serial (no call) when it changes host-wide state (sysctls, the inotify
// budget, t.Setenv, lxcfs), counts host-wide things (every link, every process), or
// asserts tight timings (cluster failover within 1 s, density ratios, Ctrl-C within 3 s).
func parallel(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_TEST_SERIAL") != "" {
		return
	}

	t.Parallel()
}
