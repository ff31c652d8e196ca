package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// imageBuilder builds image tarballs; tests replace it.
var imageBuilder = buildImage

// defaultImageCache is where built image tarballs are kept between builds.
const defaultImageCache = "/var/cache/berth/images"

func newImageBuildCmd(a *app) *cobra.Command {
	var aliases []string
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "build NAME",
		Short: "Build an image locally (e.g. debian/12) and import it",
		Long: `Build an image locally (e.g. debian/12), import it and point aliases at it.

The tarball is cached in --cache-dir and reused by later builds. Without
--alias the image gets the alias NAME; an alias pointing at another image is
moved to the new one.`,
		Args: rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(aliases) == 0 {
				aliases = []string{args[0]}
			}

			return a.imageBuild(cmd.Context(), args[0], cacheDir, aliases)
		},
	}

	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "Alias for the image (repeatable; default: NAME)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", defaultImageCache, "Directory caching built tarballs")

	return cmd
}

func (a *app) imageBuild(ctx context.Context, name, cacheDir string, aliases []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}

	p := newProgressLine(a.out)
	tarball, err := imageBuilder(ctx, name, cacheDir, buildProgress(p, name))
	p.Done("")
	if err != nil {
		return fmt.Errorf("building %s: %w", name, err)
	}

	fp, err := importIfMissing(ctx, a, c, tarball)
	if err != nil {
		return err
	}

	err = setAliases(ctx, c, fp, aliases)
	if err != nil {
		return err
	}

	a.printf("Image imported with fingerprint: %s\n", fp)

	return nil
}

// buildProgress adapts the builder's (stage, percent) reports to the
// progress line; a negative percent means "unknown".
func buildProgress(p *progressLine, name string) func(stage string, pct int) {
	return func(stage string, pct int) {
		if pct < 0 {
			p.Update(stage, fmt.Sprintf("Building %s: %s", name, stage))
			return
		}

		p.Update(fmt.Sprintf("%s %d", stage, pct/25), fmt.Sprintf("Building %s: %s %d%%", name, stage, pct))
	}
}

// importIfMissing uploads tarball unless the server already has an image with
// its fingerprint (a cached build is then a no-op).
func importIfMissing(ctx context.Context, a *app, c *client.Client, tarball string) (string, error) {
	fp, err := fileSHA256(tarball)
	if err != nil {
		return "", err
	}

	_, _, err = c.GetImage(ctx, fp)
	if err == nil {
		return fp, nil
	}

	if !api.StatusErrorCheck(err, 404) {
		return "", err
	}

	return a.uploadImage(ctx, c, tarball)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}

	defer func() { _ = f.Close() }()

	h := sha256.New()
	_, err = io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}

	return hex.EncodeToString(h.Sum(nil)), nil
}
