//go:build berth_imagebuild

// This file is compiled only with -tags berth_imagebuild until
// shared/imagebuild lands; then delete the build line above and
// image_build_stub.go.

package main

import (
	"context"

	"github.com/berth-dev/berth/shared/imagebuild"
)

// buildImage builds (or reuses from cacheDir) the image tarball for name.
func buildImage(ctx context.Context, name, cacheDir string, progress func(stage string, pct int)) (string, error) {
	return imagebuild.CachedBuild(ctx, name, cacheDir, progress)
}
