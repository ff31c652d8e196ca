package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/compressor"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
	"github.com/berth-dev/berth/shared/project"
)

// Export writes a backup of an instance (with its snapshots unless instanceOnly) to w. A
// running instance is exported from a temporary snapshot taken while it is frozen, so the
// backup is consistent and the container only pauses for the copy of its own data.
//
// The trees are walked as Pack walks them (fd-relative, bounded, sparse files as PAX sparse
// entries); cancelling ctx, or deleting the instance, stops the export and removes its
// temporary snapshot and mounts.
func (s *Service) Export(ctx context.Context, name string, instanceOnly bool, w io.Writer) error {
	return s.cfg.Instances.ReadTrees(ctx, name, !instanceOnly, func(ctx context.Context, t *instance.Trees) error {
		index := Index{Name: project.Name(name), Backend: t.Backend, Pool: t.Pool, Snapshots: []string{}}
		index.Config.Container = &t.Instance
		index.Config.Snapshots = t.Snapshots
		for _, snap := range t.Snapshots {
			index.Snapshots = append(index.Snapshots, snap.Name)
		}

		err := ctx.Err()
		if err != nil {
			return err
		}

		rootfs, release, err := t.Root(ctx)
		if err != nil {
			return err
		}

		defer release()

		cw, err := compressor.New(w, compressor.Gzip)
		if err != nil {
			return err
		}

		mapped := tarball.NewTreeWriter(cw, tarball.Options{Owner: t.IDs.ContainerOwner, Xattr: t.IDs.UnshiftXattr})
		err = writeIndex(mapped.Tar(), &index)
		if err != nil {
			return err
		}

		err = addMetadata(ctx, cw, mapped.Tar(), t.MetaDir)
		if err != nil {
			return err
		}

		err = mapped.AddTree(ctx, rootfs, containerDir+"/rootfs")
		if err != nil {
			return fmt.Errorf("archiving %q: %w", name, err)
		}

		for _, snap := range t.Snapshots {
			err := exportSnapshot(ctx, mapped, t, snap.Name)
			if err != nil {
				return err
			}
		}

		err = mapped.Close()
		if err != nil {
			return err
		}

		return cw.Close()
	})
}

func exportSnapshot(ctx context.Context, tw *tarball.TreeWriter, t *instance.Trees, snap string) error {
	view, release, err := t.Snapshot(snap)
	if err != nil {
		return err
	}

	defer release()
	err = tw.AddTree(ctx, view, snapshotsDir+"/"+snap+"/rootfs")
	if err != nil {
		return fmt.Errorf("archiving snapshot %q: %w", snap, err)
	}

	return nil
}

func writeIndex(tw *tar.Writer, index *Index) error {
	data, err := yaml.Marshal(index)
	if err != nil {
		return err
	}

	// backup/snapshots/ only when there are snapshots, as in LXD's backups.
	dirs := []string{"backup/", containerDir + "/"}
	if len(index.Snapshots) > 0 {
		dirs = append(dirs, snapshotsDir+"/")
	}

	for _, dir := range dirs {
		err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()})
		if err != nil {
			return err
		}
	}

	err = tw.WriteHeader(&tar.Header{Name: indexName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
	if err != nil {
		return err
	}

	_, err = tw.Write(data)
	return err
}

// addMetadata archives the instance's metadata.yaml and templates/ (host files, root-owned).
func addMetadata(ctx context.Context, raw io.Writer, tw *tar.Writer, metaDir string) error {
	data, err := os.ReadFile(filepath.Join(metaDir, "metadata.yaml"))
	if os.IsNotExist(err) {
		return nil
	}

	if err != nil {
		return err
	}

	err = tw.WriteHeader(&tar.Header{Name: containerDir + "/metadata.yaml", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
	if err != nil {
		return err
	}

	_, err = tw.Write(data)
	if err != nil {
		return err
	}

	_, err = os.Stat(filepath.Join(metaDir, "templates"))
	if os.IsNotExist(err) {
		return nil
	}

	return tarball.TreeWriterOn(tw, raw, tarball.Options{}).AddTree(ctx, filepath.Join(metaDir, "templates"), containerDir+"/templates")
}
