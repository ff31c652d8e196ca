package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/test/testutil"
)

// lxdDaemon is a private LXD (the real one, from Debian's lxd package: testutil.LXDPeer)
// with the test image imported as "debian12". dir and prefix are the peer's Dir and
// Prefix: instance names start with prefix.
type lxdDaemon struct {
	*testutil.LXDPeer
	dir    string
	prefix string
}

// lxdPool is the driver of the bench's LXD pool: btrfs on a loop file, LXD's own choice
// on a host without ZFS (`lxd init`). Its instances, snapshots and copies are
// copy-on-write, as Berth's are; the dir driver would copy the whole rootfs for each.
const lxdPool = "btrfs"

// startLXD starts the daemon and imports image as "debian12". On error, everything
// started so far is already cleaned up.
func startLXD(ctx context.Context, image string) (*lxdDaemon, error) {
	p, err := testutil.StartLXDPeer(ctx, testutil.LXDPeerConfig{Pool: lxdPool})
	if err != nil {
		return nil, err
	}

	l := &lxdDaemon{LXDPeer: p, dir: p.Dir, prefix: p.Prefix}
	_, err = l.lxc(ctx, "image", "import", image, "--alias", "debian12")
	if err != nil {
		for _, p := range l.close() {
			fmt.Fprintf(os.Stderr, "LXD cleanup: %s\n", p)
		}

		return nil, err
	}

	return l, nil
}

func (l *lxdDaemon) lxdDir() string { return l.LXDDir() }

// lxc runs the stock client against the daemon and returns its standard output.
func (l *lxdDaemon) lxc(ctx context.Context, args ...string) (string, error) {
	return l.Lxc(ctx, args...)
}

// start runs `lxc launch` or `lxc start`; on failure the error carries liblxc's log.
func (l *lxdDaemon) start(ctx context.Context, args ...string) error {
	_, err := l.lxc(ctx, args...)
	if err != nil {
		name := args[len(args)-1]
		log, _ := l.lxc(ctx, "info", "--show-log", name)
		_, log, _ = strings.Cut(log, "\nLog:\n")
		return fmt.Errorf("%w\nliblxc log of %s:\n%s", err, name, trim(log))
	}

	return nil
}

// initPID asks LXD for the host pid of an instance's init, in process through its unix
// socket (LXD's API is the one Berth's client speaks), as the Berth figures ask berthd.
func (l *lxdDaemon) initPID(ctx context.Context, name string) (int, error) {
	c, err := client.Connect(filepath.Join(l.lxdDir(), "unix.socket"))
	if err != nil {
		return 0, err
	}

	st, err := c.GetInstanceState(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("state of LXD instance %s: %w", name, err)
	}

	if st.Pid <= 0 {
		return 0, fmt.Errorf("%q has no init pid", name)
	}

	return int(st.Pid), nil
}
