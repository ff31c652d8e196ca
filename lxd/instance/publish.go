package instance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/compressor"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
)

// CheckPublishable fails with a StatusError when an instance (snap == "") cannot be
// published now: missing, or running (its files would change under the packer).
func (ct *Creator) CheckPublishable(ctx context.Context, name, snap string) error {
	if snap != "" {
		_, err := ct.snaps.Get(ctx, name, snap)
		return err
	}

	_, err := ct.host.exists(ctx, name)
	if err != nil {
		return err
	}

	if ct.host.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is running: stop it (or publish a snapshot) first")
	}

	return nil
}

// Publish writes an LXD unified image tarball of a stopped instance, or of one of its
// snapshots, to w: its merged root filesystem under rootfs/ with owners as the container
// sees them (host uid − the instance's base; capabilities back to plain v2), and its
// metadata.yaml (new creation date, properties overridden by props) and templates/.
func (ct *Creator) Publish(ctx context.Context, name, snap string, props map[string]string, compression string, w io.Writer) error {
	return ct.ReadTrees(ctx, name, false, func(ctx context.Context, t *Trees) error {
		err := ct.CheckPublishable(ctx, name, snap)
		if err != nil {
			return err
		}

		var rootfs string
		var release func()
		if snap != "" {
			rootfs, release, err = t.Snapshot(snap)
		} else {
			rootfs, release, err = t.Root(ctx) // stopped: the instance itself
		}

		if err != nil {
			return err
		}

		defer release()

		meta, err := os.MkdirTemp(ct.host.scratchDir(), "publish-")
		if err != nil {
			return err
		}

		defer os.RemoveAll(meta)
		err = writePublishMetadata(t.MetaDir, meta, t.Instance.Architecture, props)
		if err != nil {
			return err
		}

		return compressor.Write(w, compression, func(cw io.Writer) error {
			return tarball.PackWith(ctx, cw, rootfs, meta, tarball.Options{
				Owner: t.IDs.ContainerOwner,
				Xattr: t.IDs.UnshiftXattr,
			})
		})
	})
}

// writePublishMetadata writes the new image's metadata.yaml and templates/ into dst from
// the instance's own copy in instDir.
func writePublishMetadata(instDir, dst, arch string, props map[string]string) error {
	meta := &api.ImageMetadata{Architecture: arch}
	data, err := os.ReadFile(filepath.Join(instDir, "metadata.yaml"))
	if err == nil {
		meta, err = images.ParseMetadata(data)
		if err != nil {
			return fmt.Errorf("reading the instance's metadata: %w", err)
		}
	}

	meta.CreationDate = time.Now().Unix()
	meta.ExpiryDate = 0
	meta.Properties = api.NonNil(meta.Properties)

	for k, v := range props {
		meta.Properties[k] = v
	}

	out, err := yaml.Marshal(meta)
	if err != nil {
		return err
	}

	err = os.WriteFile(filepath.Join(dst, "metadata.yaml"), out, 0o644)
	if err != nil {
		return err
	}

	_, err = os.Stat(filepath.Join(instDir, "templates"))
	if os.IsNotExist(err) {
		return nil
	}

	return copyTree(filepath.Join(instDir, "templates"), filepath.Join(dst, "templates"))
}
