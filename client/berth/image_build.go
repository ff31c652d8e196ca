package main

import (
	"context"

	"github.com/berth-dev/berth/shared/imagebuild"
)

// buildImage builds (or reuses from cacheDir) the image tarball for name.
func buildImage(ctx context.Context, name, cacheDir string, progress func(stage string, pct int)) (string, error) {
	return imagebuild.CachedBuild(ctx, name, cacheDir, progress)
}
