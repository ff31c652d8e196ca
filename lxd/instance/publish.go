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

	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
)

// CheckPublishable fails with a StatusError when an instance (snap == "") cannot be
// published now: missing, or running (its files would change under the packer).
func (m *Manager) CheckPublishable(ctx context.Context, name, snap string) error {
	if snap != "" {
		_, err := m.Snapshot(ctx, name, snap)
		return err
	}

	_, err := m.exists(ctx, name)
	if err != nil {
		return err
	}

	if m.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is running: stop it (or publish a snapshot) first")
	}

	return nil
}

// Publish writes an LXD unified image tarball of a stopped instance, or of one of its
// snapshots, to w: its merged root filesystem under rootfs/ with owners as the container
// sees them (host uid − the instance's base; capabilities back to plain v2), and its
// metadata.yaml (new creation date, properties overridden by props) and templates/.
func (m *Manager) Publish(ctx context.Context, name, snap string, props map[string]string, compression string, w io.Writer) error {
	ctx, done := m.track(ctx, name)
	defer done()

	unlock := m.lock(name)
	defer unlock()

	err := m.CheckPublishable(ctx, name, snap)
	if err != nil {
		return err
	}

	inst, _, err := m.load(ctx, name)
	if err != nil {
		return err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return err
	}

	var rootfs string
	if snap != "" {
		var release func()
		rootfs, release, err = m.cfg.Pool.MountSnapshot(name, snap, ids)
		if err != nil {
			return err
		}

		defer release()
	} else {
		rootfs, err = m.cfg.Pool.MountInstance(name, ids)
		if err != nil {
			return err
		}

		defer func() { _ = m.cfg.Pool.UnmountInstance(name) }()
	}

	meta, err := os.MkdirTemp("", "berth-publish-")
	if err != nil {
		return err
	}

	defer os.RemoveAll(meta)
	err = writePublishMetadata(m.instanceDir(name), meta, inst.Architecture, props)
	if err != nil {
		return err
	}

	return tarball.PackWith(ctx, w, rootfs, meta, tarball.Options{
		Compression: compression,
		Owner:       ids.ContainerOwner,
		Xattr:       ids.UnshiftXattr,
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
	if meta.Properties == nil {
		meta.Properties = map[string]string{}
	}

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
