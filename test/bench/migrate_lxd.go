package main

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/test/testutil"
)

// migrateLXD is migrateBerth between two private LXD 5.0.2 daemons (testutil.LXDPeer:
// dir pools, no network, HTTPS on loopback), remotes L1 and L2 of a fresh lxc. Both
// daemons and whatever they hold are gone when it returns.
func migrateLXD(ctx context.Context, lxc, tmp, image string, r *report) (err error) {
	peers := []*lxdDaemon{}
	defer func() {
		for _, l := range peers {
			for _, p := range l.close() {
				r.note("migrate: LXD cleanup: %s", p)
			}
		}
	}()

	env := clientEnv(tmp, "lxc-lxd")
	for _, remote := range []string{"L1", "L2"} {
		p, err := testutil.StartLXDPeer(ctx, testutil.LXDPeerConfig{HTTPS: true})
		if err != nil {
			return err
		}

		l := &lxdDaemon{LXDPeer: p, dir: p.Dir, prefix: p.Prefix}
		peers = append(peers, l)
		err = addRemote(lxc, env, remote, func() (string, error) { return l.lxc(ctx, "config", "trust", "add", "--name", "bench-migrate", "-q") })
		if err != nil {
			return err
		}
	}

	l1 := peers[0]
	_, err = l1.lxc(ctx, "image", "import", image, "--alias", "debian12")
	if err != nil {
		return err
	}

	name := l1.prefix + "mig"
	err = l1.start(ctx, "launch", "debian12", name)
	if err != nil {
		return err
	}

	err = l1.waitRunning(ctx, name)
	if err != nil {
		return err
	}

	out, err := l1.lxc(ctx, "exec", name, "--", "sh", "-c", migrateFill(*migrateMB))
	if err != nil {
		return fmt.Errorf("writing %d MB inside: %w: %s", *migrateMB, err, trim(out))
	}

	_, err = l1.lxc(ctx, "stop", name)
	if err != nil {
		return err
	}

	_, err = timedMoves(ctx, r, fmt.Sprintf(rowLXDMove, *migrateMB), lxc, env, name, "L1", "L2")
	if err != nil {
		return err
	}

	fp, err := fileSHA256(image)
	if err != nil {
		return err
	}

	return timedImageCopies(ctx, r, rowLXDImage, lxc, env, fp, "L1", "L2")
}
