package instance

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
)

// Backup tarball layout (LXD's, loosely; gzip-compressed tar):
//
//	backup/index.yaml                     BackupIndex, always the first member
//	backup/container/metadata.yaml        the instance's image metadata and templates
//	backup/container/templates/…
//	backup/container/rootfs/…             merged root filesystem, owners as inside
//	backup/snapshots/<snap>/rootfs/…      each snapshot's root filesystem, likewise
const (
	backupIndex     = "backup/index.yaml"
	backupContainer = "backup/container"
	backupSnapshots = "backup/snapshots"
)

// BackupsDir holds backup files ($BERTH_DIR/backups/<instance>/<backup>) and imports in
// progress.
func (m *Manager) BackupsDir() string { return filepath.Join(m.cfg.Dir, "backups") }

// removeBackupLeftovers deletes the partial backup files of exports a crash interrupted.
func (m *Manager) removeBackupLeftovers() {
	matches, _ := filepath.Glob(filepath.Join(m.BackupsDir(), "*", ".tmp-*"))
	for _, f := range matches {
		err := os.Remove(f)
		if err == nil {
			m.log.Info("removed partial backup of an interrupted export", "path", f)
		}
	}
}

// deleteBackups removes an instance's backup files with the instance.
func (m *Manager) deleteBackups(name string) {
	_ = os.RemoveAll(filepath.Join(m.BackupsDir(), name))
}

// BackupIndex is backup/index.yaml.
type BackupIndex struct {
	Name      string   `yaml:"name"`
	Backend   string   `yaml:"backend"`
	Pool      string   `yaml:"pool"`
	Snapshots []string `yaml:"snapshots"`
	Config    struct {
		Container *api.Instance          `yaml:"container"`
		Snapshots []api.InstanceSnapshot `yaml:"snapshots"`
	} `yaml:"config"`
}

// Export writes a backup of an instance (with its snapshots unless instanceOnly) to w. A
// running instance is exported from a temporary snapshot taken while it is frozen, so the
// backup is consistent and the container only pauses for the copy of its own data.
//
// The trees are walked as Pack walks them (fd-relative, bounded, sparse files as PAX sparse
// entries); cancelling ctx, or deleting the instance, stops the export and removes its
// temporary snapshot and mounts.
func (m *Manager) Export(ctx context.Context, name string, instanceOnly bool, w io.Writer) error {
	ctx, done := m.track(ctx, name)
	defer done()

	unlock := m.lock(name)
	defer unlock()

	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return err
	}

	var snaps []db.Snapshot
	if !instanceOnly {
		err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			var err error
			snaps, err = tx.GetInstanceSnapshots(ctx, name)
			return err
		})
		if err != nil {
			return err
		}
	}

	index := BackupIndex{Name: name, Backend: m.cfg.Pool.Name(), Pool: m.cfg.PoolName, Snapshots: []string{}}
	full := m.render(inst, profiles, false)
	index.Config.Container = &full.Instance
	index.Config.Snapshots = []api.InstanceSnapshot{}
	for i := range snaps {
		index.Snapshots = append(index.Snapshots, snaps[i].Name)
		index.Config.Snapshots = append(index.Config.Snapshots, renderSnapshot(&snaps[i], profiles))
	}

	err = ctx.Err()
	if err != nil {
		return err
	}

	rootfs, release, err := m.exportView(ctx, name)
	if err != nil {
		return err
	}

	defer release()

	cw, err := tarball.NewCompressor(w, tarball.Gzip)
	if err != nil {
		return err
	}

	mapped := tarball.NewTreeWriter(cw, tarball.Options{Owner: ids.ContainerOwner, Xattr: ids.UnshiftXattr})
	err = writeIndex(mapped.Tar(), &index)
	if err != nil {
		return err
	}

	err = addMetadata(ctx, cw, mapped.Tar(), m.instanceDir(name))
	if err != nil {
		return err
	}

	err = mapped.AddTree(ctx, rootfs, backupContainer+"/rootfs")
	if err != nil {
		return fmt.Errorf("archiving %q: %w", name, err)
	}

	for _, s := range snaps {
		err := m.exportSnapshot(ctx, mapped, name, s.Name)
		if err != nil {
			return err
		}
	}

	err = mapped.Close()
	if err != nil {
		return err
	}

	return cw.Close()
}

// exportView gives the root filesystem to archive. Preconditions: the instance lock is held.
func (m *Manager) exportView(ctx context.Context, name string) (string, func(), error) {
	inst, _, err := m.load(context.Background(), name)
	if err != nil {
		return "", nil, err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return "", nil, err
	}

	if m.monitor(name) == nil {
		rootfs, err := m.cfg.Pool.MountInstance(name, ids)
		if err != nil {
			return "", nil, err
		}

		return rootfs, func() { _ = m.cfg.Pool.UnmountInstance(name) }, nil
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := storage.TempSnapshotPrefix + hex.EncodeToString(b)
	err = m.frozen(name, func() error { return m.cfg.Pool.CreateSnapshot(ctx, name, tmp) })
	if err != nil {
		return "", nil, err
	}

	rootfs, release, err := m.cfg.Pool.MountSnapshot(name, tmp, ids)
	if err != nil {
		_ = m.cfg.Pool.DeleteSnapshot(name, tmp)
		return "", nil, err
	}

	return rootfs, func() {
		release()
		_ = m.cfg.Pool.DeleteSnapshot(name, tmp)
	}, nil
}

func (m *Manager) exportSnapshot(ctx context.Context, tw *tarball.TreeWriter, name, snap string) error {
	inst, _, err := m.load(context.Background(), name)
	if err != nil {
		return err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return err
	}

	view, release, err := m.cfg.Pool.MountSnapshot(name, snap, ids)
	if err != nil {
		return err
	}

	defer release()
	err = tw.AddTree(ctx, view, backupSnapshots+"/"+snap+"/rootfs")
	if err != nil {
		return fmt.Errorf("archiving snapshot %q: %w", snap, err)
	}

	return nil
}

func writeIndex(tw *tar.Writer, index *BackupIndex) error {
	data, err := yaml.Marshal(index)
	if err != nil {
		return err
	}

	for _, dir := range []string{"backup/", backupContainer + "/", backupSnapshots + "/"} {
		err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()})
		if err != nil {
			return err
		}
	}

	err = tw.WriteHeader(&tar.Header{Name: backupIndex, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
	if err != nil {
		return err
	}

	_, err = tw.Write(data)
	return err
}

// addMetadata archives the instance's metadata.yaml and templates/ (host files, root-owned).
func addMetadata(ctx context.Context, raw io.Writer, tw *tar.Writer, instDir string) error {
	data, err := os.ReadFile(filepath.Join(instDir, "metadata.yaml"))
	if os.IsNotExist(err) {
		return nil
	}

	if err != nil {
		return err
	}

	err = tw.WriteHeader(&tar.Header{Name: backupContainer + "/metadata.yaml", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
	if err != nil {
		return err
	}

	_, err = tw.Write(data)
	if err != nil {
		return err
	}

	_, err = os.Stat(filepath.Join(instDir, "templates"))
	if os.IsNotExist(err) {
		return nil
	}

	return tarball.TreeWriterOn(tw, raw, tarball.Options{}).AddTree(ctx, filepath.Join(instDir, "templates"), backupContainer+"/templates")
}
