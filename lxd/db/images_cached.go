package db

import "context"

const imageCachedUpdate = `UPDATE images SET cached = ?
WHERE fingerprint = ? AND project_id = (SELECT id FROM projects WHERE name = ?)`

// UpdateImageCached marks project proj's image with exactly that fingerprint as cached
// (brought in by a launch from a remote, pruned after images.remote_cache_expiry unused)
// or not (kept until deleted).
func (tx *Tx) UpdateImageCached(ctx context.Context, proj, fingerprint string, cached bool) error {
	return tx.execOne(ctx, "image", fingerprint, imageCachedUpdate, cached, fingerprint, proj)
}
