// Package images reads, unpacks, packs and renders LXD-format images (lxd-api.md §8).
//
// Image tarballs and container trees are treated as hostile: every path is resolved with
// openat2 relative to a directory fd, so no entry or symlink can reach outside its root.
package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/lxd/compressor"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
)

// Fingerprint returns the lowercase hex SHA-256 of the file at path: an image's identity.
func Fingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening image %q: %w", path, err)
	}

	defer f.Close()

	h := sha256.New()

	_, err = io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("hashing image %q: %w", path, err)
	}

	return hex.EncodeToString(h.Sum(nil)), nil
}

// Pack writes a unified image tarball (metadata.yaml, templates/, rootfs/) to w, compressed
// with compression ("" or "gzip", "zstd", "xz", "none"). The instance must be stopped.
func Pack(w io.Writer, rootfsDir, metaDir, compression string) error {
	return compressor.Write(w, compression, func(cw io.Writer) error {
		return tarball.Pack(cw, rootfsDir, metaDir)
	})
}
