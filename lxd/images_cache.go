package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// images.remote_cache_expiry (LXD's key and default): an image a launch brought in from
// a remote (cached) is deleted once unused for that many days: since the last instance
// made from it, or since its download if none was. Images an administrator imported,
// published or copied explicitly are never cached, and an explicit copy of a cached image
// keeps it. Instances made from a deleted image keep working (the pool keeps what they
// sit on). Unlike LXD, the days may be a decimal ("0.5"); 0 keeps cached images forever.
const (
	keyRemoteCacheExpiry     = "images.remote_cache_expiry"
	defaultRemoteCacheExpiry = 10 * 24 * time.Hour
	// maxRemoteCacheDays bounds the value (a century), so the duration cannot overflow.
	maxRemoteCacheDays = 36500
)

// imageCachePoke wakes the pruner when the key changes.
var imageCachePoke = make(chan struct{}, 1)

// validRemoteCacheExpiry checks a value of images.remote_cache_expiry.
func validRemoteCacheExpiry(v string) error {
	_, err := parseCacheDays(v)
	return err
}

func parseCacheDays(v string) (time.Duration, error) {
	if v == "" {
		return defaultRemoteCacheExpiry, nil
	}

	days, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(days) || days < 0 || days > maxRemoteCacheDays {
		return 0, fmt.Errorf("%q is not a number of days from 0 to %d", v, maxRemoteCacheDays)
	}

	return time.Duration(days * float64(24*time.Hour)), nil
}

// remoteCacheExpiry is the configured expiry, 0 when cached images are kept.
func (d *Daemon) remoteCacheExpiry() time.Duration {
	exp, err := parseCacheDays(d.serverConfig()[keyRemoteCacheExpiry])
	if err != nil {
		return defaultRemoteCacheExpiry // validated when set: only a hand-edited database
	}

	return exp
}

// runImageCachePruner deletes expired cached images until ctx ends. It looks a quarter
// of the expiry after each pass (between a second and an hour), and when the key changes.
func (d *Daemon) runImageCachePruner(ctx context.Context) {
	for {
		exp := d.remoteCacheExpiry()
		wait := time.Hour
		if exp > 0 {
			d.pruneImageCache(ctx, exp)
			wait = min(max(exp/4, time.Second), time.Hour)
		}

		select {
		case <-ctx.Done():
			return
		case <-imageCachePoke:
		case <-time.After(wait):
		}
	}
}

// pruneImageCache deletes the cached images unused for longer than exp.
func (d *Daemon) pruneImageCache(ctx context.Context, exp time.Duration) {
	now := time.Now()
	old, err := d.images.ListAll(ctx, func(img *api.Image) bool {
		used := img.LastUsedAt
		if used.IsZero() || used.Before(img.UploadedAt) {
			used = img.UploadedAt
		}

		return img.Cached && now.Sub(used) > exp
	})
	if err != nil {
		d.log.Warn("listing images to prune", "err", err)
		return
	}

	for proj, imgs := range old {
		for _, img := range imgs {
			fp := img.Fingerprint
			finish, err := d.images.Delete(ctx, proj, fp)
			if err != nil {
				d.log.Warn("pruning cached image", "project", proj, "fingerprint", fp, "err", err)
				continue
			}

			d.revokeImageSecrets(proj, fp)
			d.events.SendLifecycle(proj, "image-deleted", imageURL(proj, fp), nil)
			finish()
			d.log.Info("pruned cached image", "project", proj, "fingerprint", fp, "expiry", exp)
		}
	}
}

// pokeImageCachePruner makes the pruner read the key again now.
func pokeImageCachePruner() {
	select {
	case imageCachePoke <- struct{}{}:
	default:
	}
}
