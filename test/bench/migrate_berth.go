package main

import (
	"context"
	"fmt"
)

// migrateBerth moves a stopped container between b and a second berthd of its own (both
// on HTTPS loopback listeners, remotes A and B of a fresh lxc), then copies the test image
// from A to B. The second daemon, the container and the listeners are gone when it
// returns.
func migrateBerth(ctx context.Context, b *berthd, lxc, tmp, image string, r *report) error {
	const name = "migbench"
	b2, err := startBerthd(*binDir)
	if err != nil {
		return err
	}

	defer b2.close() // deletes whatever it holds
	env := clientEnv(tmp, "lxc-berth")
	daemons := map[string]*berthd{"A": b, "B": b2}
	for _, remote := range []string{"A", "B"} {
		d := daemons[remote]
		addr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}

		_, err = d.berth("config", "set", "core.https_address", addr)
		if err != nil {
			return err
		}

		defer func() { _, _ = d.berth("config", "unset", "core.https_address") }()
		err = addRemote(lxc, env, remote, func() (string, error) { return d.berth("config", "trust", "add", "bench-migrate", "-q") })
		if err != nil {
			return err
		}
	}

	_, err = b.berth("launch", "debian/12", name)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", name) }() // if it is back on A, or never left
	_, err = b.waitInstance(name)
	if err != nil {
		return err
	}

	out, err := b.berth("exec", name, "--", "sh", "-c", migrateFill(*migrateMB))
	if err != nil {
		return fmt.Errorf("writing %d MB inside: %w: %s", *migrateMB, err, trim(out))
	}

	_, err = b.berth("stop", name)
	if err != nil {
		return err
	}

	_, err = timedMoves(ctx, r, fmt.Sprintf(rowBerthMove, *migrateMB), lxc, env, name, "A", "B")
	if err != nil {
		return err
	}

	fp, err := fileSHA256(image)
	if err != nil {
		return err
	}

	return timedImageCopies(ctx, r, rowBerthImage, lxc, env, fp, "A", "B")
}
