package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/streams"
)

// newImagePublishStreamsCmd writes a simplestreams tree of the daemon's images into a
// directory any static HTTPS server can serve to lxc, Incus and berthd (issue 15).
func newImagePublishStreamsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "publish-streams DIR [IMAGE...]",
		Short: "Write a simplestreams tree (streams/v1/*.json and the image files) of images into DIR",
		Long: "Write a simplestreams tree of the named images (aliases or fingerprints; all images\n" +
			"when none is named) into DIR, replacing it as a whole: the tree is written beside\n" +
			"DIR and renamed into place.",
		Args: rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}

			imgs, err := streamsImages(cmd.Context(), c, args[1:])
			if err != nil {
				return err
			}

			err = publishStreams(cmd.Context(), c, args[0], imgs)
			if err != nil {
				return err
			}

			a.printf("Published %d image(s) into %s\n", len(imgs), args[0])
			return nil
		},
	}
}

// streamsImages returns the named images (by alias, else fingerprint), or all.
func streamsImages(ctx context.Context, c *client.Client, names []string) ([]api.Image, error) {
	if len(names) == 0 {
		return c.GetImages(ctx)
	}

	out := []api.Image{}
	seen := map[string]bool{}
	for _, n := range names {
		ref := n
		if a, _, err := c.GetImageAlias(ctx, n); err == nil {
			ref = a.Target
		}

		img, _, err := c.GetImage(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", n, err)
		}

		if !seen[img.Fingerprint] {
			seen[img.Fingerprint] = true
			out = append(out, *img)
		}
	}

	return out, nil
}

// publishStreams writes the tree into a temporary directory beside dir, then swaps it in.
func publishStreams(ctx context.Context, c *client.Client, dir string, imgs []api.Image) error {
	dir = filepath.Clean(dir)
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".streams-")
	if err != nil {
		return err
	}

	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()

	// MkdirTemp makes it 0700; the tree is for a web server to read.
	err = os.Chmod(tmp, 0o755)
	if err != nil {
		return err
	}

	entries := []streams.Image{}
	for _, img := range imgs {
		if img.Type != "" && img.Type != api.InstanceTypeContainer {
			continue
		}

		rel := "images/" + img.Fingerprint + ".tar.gz"
		size, err := exportTo(ctx, c, img.Fingerprint, filepath.Join(tmp, rel))
		if err != nil {
			return err
		}

		aliases := []string{}
		for _, a := range img.Aliases {
			aliases = append(aliases, a.Name)
		}

		arch := img.Architecture
		if arch == "" {
			arch = img.Properties["architecture"]
		}

		entries = append(entries, streams.Image{
			Fingerprint: img.Fingerprint, Size: size, Path: rel, Created: img.CreatedAt, Aliases: aliases,
			OS: img.Properties["os"], Release: img.Properties["release"], Variant: img.Properties["variant"], Architecture: arch,
		})
	}

	index, products, err := streams.Build(entries, time.Now())
	if err != nil {
		return err
	}

	err = os.MkdirAll(filepath.Join(tmp, "streams", "v1"), 0o755)
	if err != nil {
		return err
	}

	for p, data := range map[string][]byte{streams.IndexPath: index, streams.ProductsPath: products} {
		err = os.WriteFile(filepath.Join(tmp, p), data, 0o644)
		if err != nil {
			return err
		}
	}

	// Swap: the old tree (if any) is moved aside, the new one renamed in, the old removed.
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		err = os.Rename(dir, old)
		if err != nil {
			return err
		}
	}

	err = os.Rename(tmp, dir)
	if err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}

		return err
	}

	done = true
	if old != "" {
		_ = os.RemoveAll(old)
	}

	return nil
}

// exportTo downloads image fp into path and checks it is the image (its sha256).
func exportTo(ctx context.Context, c *client.Client, fp, path string) (int64, error) {
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err != nil {
		return 0, err
	}

	body, _, err := c.ExportImage(ctx, fp, "")
	if _, split := body.(*client.SplitExport); split {
		_ = body.Close()
		return 0, fmt.Errorf("image %s is a split image (metadata + squashfs): publish-streams writes unified images only", fp)
	}

	if err != nil {
		return 0, err
	}

	defer func() { _ = body.Close() }()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}

	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), body)
	closeErr := f.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		return 0, fmt.Errorf("exporting image %s: %w", fp, err)
	}

	if got := hex.EncodeToString(h.Sum(nil)); got != fp {
		return 0, fmt.Errorf("exported image %s has sha256 %s: only unified images can be published", fp, got)
	}

	return size, nil
}
