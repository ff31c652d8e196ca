package volumes

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/compressor"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/tarsafe"
)

// Backups of custom volumes have LXD's shape:
//
//	backup/index.yaml                    name, pool, backend, type custom, the volume's
//	                                     config and its snapshots'
//	backup/volume/…                      the volume's tree
//	backup/volume-snapshots/<snap>/…     each snapshot's tree (unless volume_only)
//
// Owners are written as the container ids (0..65535), so a backup is portable to LXD and
// back. An import is hostile input: the upload is capped (MaxImportSize), the index
// (maxIndexSize), the bytes and entries of the unpacked trees (maxUnpacked,
// maxEntries); member names are checked with tarsafe, only the layout's prefixes are
// kept, a hard link must stay in its own tree, and each tree is unpacked by the image
// unpacker (no device nodes, parents resolved inside the tree, nothing followed), then
// copied into the new volume with its owners moved into the volume block.

const (
	// MaxImportSize bounds an uploaded volume backup.
	MaxImportSize = 64 << 30
	maxIndexSize  = 4 << 20
	maxUnpacked   = 256 << 30
	maxEntries    = 4 << 20

	indexName      = "backup/index.yaml"
	backupVolume   = "backup/volume"
	backupSnapshot = "backup/volume-snapshots"
)

// volumeIDs is the id block volumes store, as a container's map: Owner and Xattr of the
// tarball writer move it to 0..65535, CopyShifted moves it back.
var volumeIDs = idmap.Set{HostUID: idmap.VolumeBase, HostGID: idmap.VolumeBase, Size: idmap.DefaultSize}

// index is backup/index.yaml.
type index struct {
	Name            string   `yaml:"name"`
	Backend         string   `yaml:"backend"`
	Pool            string   `yaml:"pool"`
	Snapshots       []string `yaml:"snapshots"`
	Optimized       bool     `yaml:"optimized"`
	OptimizedHeader bool     `yaml:"optimized_header"`
	Type            string   `yaml:"type"`
	Config          struct {
		Volume          *api.StorageVolume          `yaml:"volume"`
		VolumeSnapshots []api.StorageVolumeSnapshot `yaml:"volume_snapshots"`
	} `yaml:"config"`
}

// BackupDir is where a volume's exported backups are kept until deleted.
func (s *Service) BackupDir(pool, name string) string {
	return filepath.Join(s.markerDir(), "backups", pool, name)
}

// BackupFile is the file of backup b of a volume, or a 404.
func (s *Service) BackupFile(pool, name, b string) (string, error) {
	err := ValidateName("backup", b)
	if err != nil {
		return "", err
	}

	p := filepath.Join(s.BackupDir(pool, name), b)
	_, err = os.Lstat(p)
	if err != nil {
		return "", api.StatusErrorf(http.StatusNotFound, "backup %q of storage volume %q not found", b, name)
	}

	return p, nil
}

// Backups lists the names of a volume's backups.
func (s *Service) Backups(ctx context.Context, pool, name string) ([]string, error) {
	_, err := s.Get(ctx, pool, name)
	if err != nil {
		return nil, err
	}

	ents, _ := os.ReadDir(s.BackupDir(pool, name))
	out := []string{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}

	return out, nil
}

// DeleteBackup removes an exported backup.
func (s *Service) DeleteBackup(pool, name, b string) error {
	p, err := s.BackupFile(pool, name, b)
	if err != nil {
		return err
	}

	return os.Remove(p)
}

// NextBackupName is the first free backupN of a volume.
func (s *Service) NextBackupName(pool, name string) string {
	for i := 0; ; i++ {
		n := fmt.Sprintf("backup%d", i)
		if _, err := os.Lstat(filepath.Join(s.BackupDir(pool, name), n)); err != nil {
			return n
		}
	}
}

// CreateBackup exports a volume (with its snapshots unless volumeOnly) into backup b,
// compressed with compression ("" gzip).
func (s *Service) CreateBackup(ctx context.Context, pool, name, b string, volumeOnly bool, compression string) error {
	err := ValidateName("backup", b)
	if err != nil {
		return err
	}

	dir := s.BackupDir(pool, name)
	err = os.MkdirAll(dir, 0o700)
	if err != nil {
		return err
	}

	if _, err := os.Lstat(filepath.Join(dir, b)); err == nil {
		return api.StatusErrorf(http.StatusConflict, "backup %q of storage volume %q already exists", b, name)
	}

	have, err := s.Backups(ctx, pool, name)
	if err != nil {
		return err
	}

	if len(have) >= maxBackups {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q has %d backups, the most it may keep: delete one first", name, len(have))
	}

	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}

	defer func() { _ = os.Remove(f.Name()) }()

	err = s.Export(ctx, pool, name, volumeOnly, compression, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}

	if err != nil {
		return err
	}

	return os.Rename(f.Name(), filepath.Join(dir, b))
}

// Export writes a backup of a volume to w. The trees are walked as images are packed
// (fd-relative, bounded, sparse-aware): a volume's files are a container's.
func (s *Service) Export(ctx context.Context, pool, name string, volumeOnly bool, compression string, w io.Writer) error {
	defer s.locks.take(nil, []key{{pool, name}})() // not deleted or restored under the walk

	v, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	poolDir, driver, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	idx := index{Name: project.VolumeName(name), Backend: driver, Pool: pool, Type: "custom", Snapshots: []string{}}
	idx.Config.Volume = v
	idx.Config.VolumeSnapshots = []api.StorageVolumeSnapshot{}
	if !volumeOnly {
		snaps, err := s.Snapshots(ctx, pool, name)
		if err != nil {
			return err
		}

		idx.Config.VolumeSnapshots = snaps
		for _, sn := range snaps {
			idx.Snapshots = append(idx.Snapshots, sn.Name)
		}
	}

	cw, err := compressor.New(w, compression)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "compression %q: %v", compression, err)
	}

	tw := tarball.NewTreeWriter(cw, tarball.Options{Owner: volumeIDs.ContainerOwner, Xattr: volumeIDs.UnshiftXattr})
	err = writeIndex(tw.Tar(), &idx)
	if err == nil {
		err = tw.AddTree(ctx, volumeDir(poolDir, name), backupVolume)
	}

	for _, sn := range idx.Snapshots {
		if err == nil {
			err = tw.AddTree(ctx, snapshotDir(poolDir, name, sn), backupSnapshot+"/"+sn)
		}
	}

	if err == nil {
		err = tw.Close()
	}

	if err == nil {
		err = cw.Close()
	}

	if err != nil {
		return fmt.Errorf("exporting storage volume %q: %w", name, err)
	}

	return nil
}

func writeIndex(tw *tar.Writer, idx *index) error {
	data, err := yaml.Marshal(idx)
	if err != nil {
		return err
	}

	for _, d := range []string{"backup/", backupVolume + "/"} {
		err = tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()})
		if err != nil {
			return err
		}
	}

	err = tw.WriteHeader(&tar.Header{Name: indexName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
	if err == nil {
		_, err = tw.Write(data)
	}

	return err
}

// Import creates a volume of pool from the backup in file (hostile input, see above),
// named name or as the backup says. It returns the volume's name.
func (s *Service) Import(ctx context.Context, pool, file, name string) (string, error) {
	tmp, err := os.MkdirTemp(s.markerDir(), ".import-")
	if err != nil {
		return "", err
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	sp, err := splitBackup(file, tmp)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "reading volume backup: %v", err)
	}

	idx, trees := sp.index, sp.trees
	if project.VolumeName(name) == "" {
		// A key's project prefix (or ""): the name the backup says, in that project.
		err = ValidateName("storage volume", idx.Name)
		if err != nil {
			return "", err
		}

		name = project.VolumeKey(project.VolumeProject(name), idx.Name)
	}

	err = validateKey("storage volume", name)
	if err != nil {
		return "", err
	}

	if idx.Type != "" && idx.Type != "custom" {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup of a %q volume: only custom volumes are imported", idx.Type)
	}

	if _, ok := trees[""]; !ok {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup has no %s/", backupVolume)
	}

	config, description := map[string]string{}, ""
	if v := idx.Config.Volume; v != nil {
		config, description = maps.Clone(v.Config), v.Description
		if config == nil {
			config = map[string]string{}
		}

		err = checkDescription(description)
		if err == nil {
			err = validateConfig(config)
		}

		if err != nil {
			return "", err
		}
	}

	// A size the target pool cannot enforce is dropped rather than refusing the data.
	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return "", err
	}

	if config["size"] != "" {
		reason, _ := storage.VolumeQuotaProblem(volumeDir(poolDir, name))
		if reason != "" {
			delete(config, "size")
		}
	}

	unpack := func(tree string) (string, error) {
		dst := filepath.Join(tmp, "tree-"+strings.ReplaceAll(tree, "/", "_"))
		err := os.Mkdir(dst, 0o700)
		if err != nil {
			return "", err
		}

		meta := dst + ".meta"
		err = os.Mkdir(meta, 0o700)
		if err != nil {
			return "", err
		}

		stats, err := (&images.Unpacker{Log: s.log}).Unpack(trees[tree], dst, meta)
		if stats.SkippedDevices > 0 {
			s.log.Warn("volume backup carried device nodes; skipped", "volume", name, "count", stats.SkippedDevices)
		}

		return dst, err
	}

	shiftInto := func(tree, src string) func(dir string) error {
		return func(dir string) error {
			err := storage.FillVolumeDir(dir, func(dst string) error { return volumeIDs.CopyShifted(ctx, src, dst) })
			if err != nil {
				return err
			}

			t, ok := sp.tops[tree]
			if !ok {
				t = top{mode: 0o755}
			}

			uid, gid := volumeIDs.UIDToHost(int64(t.uid)), volumeIDs.GIDToHost(int64(t.gid))
			if uid < 0 || gid < 0 {
				return api.StatusErrorf(http.StatusBadRequest, "backup: owner %d:%d of the volume's top directory is outside 0..65535", t.uid, t.gid)
			}

			err = os.Lchown(dir, int(uid), int(gid))
			if err == nil {
				err = os.Chmod(dir, os.FileMode(t.mode&0o777))
			}

			return err
		}
	}

	root, err := unpack("")
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "unpacking volume backup: %v", err)
	}

	unlock := s.lockVolume(pool, name)
	err = s.create(ctx, pool, name, description, config, shiftInto("", root))
	unlock()
	if err != nil {
		return "", err
	}

	for _, sn := range idx.Config.VolumeSnapshots {
		if _, ok := trees[sn.Name]; !ok || ValidateName("snapshot", sn.Name) != nil {
			continue
		}

		src, err := unpack(sn.Name)
		if err == nil {
			err = s.importSnapshot(ctx, pool, name, sn, shiftInto(sn.Name, src))
		}

		if err != nil {
			s.log.Warn("importing a volume snapshot; left out", "volume", name, "snapshot", sn.Name, "err", err)
		}
	}

	return name, nil
}

// importSnapshot records a snapshot whose tree fill writes.
func (s *Service) importSnapshot(ctx context.Context, pool, name string, sn api.StorageVolumeSnapshot, fill func(dir string) error) error {
	defer s.lockVolume(pool, name)()

	return s.addSnapshot(ctx, pool, name, sn, fill)
}

// addSnapshot records a snapshot whose tree fill writes (imports, copies); the volume's
// lock is held.
func (s *Service) addSnapshot(ctx context.Context, pool, name string, sn api.StorageVolumeSnapshot, fill func(dir string) error) error {
	config := maps.Clone(sn.Config)
	if validateConfig(config) != nil || checkDescription(sn.Description) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "snapshot %q: bad config or description", sn.Name)
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	err = os.MkdirAll(snapshotsOf(poolDir, name), 0o700)
	if err != nil {
		return err
	}

	dst := snapshotDir(poolDir, name, sn.Name)
	done, err := s.mark(pending{Pool: pool, Volume: name, Snapshot: sn.Name, Remove: []string{dst}})
	if err != nil {
		return err
	}

	defer done()
	err = fill(dst)
	if err != nil {
		_ = storage.RemoveVolumeDir(dst)
		return err
	}

	row := db.StorageVolumeSnapshot{Pool: pool, Volume: name, Name: sn.Name, Description: sn.Description, Config: config, CreatedAt: sn.CreatedAt}
	if sn.ExpiresAt != nil {
		row.ExpiresAt = *sn.ExpiresAt
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.CreateStorageVolumeSnapshot(ctx, row)
	})
	if err != nil {
		_ = storage.RemoveVolumeDir(dst)
	}

	return err
}

// splitBackup reads a volume backup and writes one image-layout tarball (rootfs/…) per
// tree into dir: trees[""] for the volume, trees[snap] for each snapshot the index lists.
func splitBackup(file, dir string) (*split, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}

	defer func() { _ = f.Close() }()
	tr, closer, err := images.OpenTar(f)
	if err != nil {
		return nil, err
	}

	defer func() { _ = closer.Close() }()
	idx, err := readIndex(tr)
	if err != nil {
		return nil, err
	}

	if len(idx.Snapshots) > maxSnapshots {
		return nil, fmt.Errorf("the index lists %d snapshots, a volume may have at most %d", len(idx.Snapshots), maxSnapshots)
	}

	budget, err := unpackBudget(dir)
	if err != nil {
		return nil, err
	}

	snaps := map[string]bool{}
	for _, sn := range idx.Snapshots {
		if ValidateName("snapshot", sn) != nil || snaps[sn] {
			return nil, fmt.Errorf("bad or repeated snapshot name %q in index", sn)
		}

		snaps[sn] = true
	}

	sp := &splitter{Trees: tarsafe.NewTrees(dir), tops: map[string]top{}}
	defer sp.Close()

	var entries int
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return nil, err
		}

		entries++
		if entries > maxEntries {
			return nil, fmt.Errorf("more than %d entries", maxEntries)
		}

		tree, rel, err := member(hdr.Name, snaps)
		if err != nil {
			return nil, err
		}

		if rel == "" {
			continue
		}

		if rel == "." {
			if hdr.Typeflag == tar.TypeDir {
				sp.tops[tree] = top{uid: hdr.Uid, gid: hdr.Gid, mode: hdr.Mode}

				// An empty volume (or snapshot) is only its top directory: its
				// tree exists all the same.
				err = sp.addTop(tree)
				if err != nil {
					return nil, err
				}
			}

			continue
		}

		if hdr.Typeflag == tar.TypeLink {
			lt, lrel, err := member(hdr.Linkname, snaps)
			if err != nil || lrel == "" || lt != tree {
				return nil, fmt.Errorf("hard link %q points outside its tree (%q)", hdr.Name, hdr.Linkname)
			}

			hdr.Linkname = "rootfs/" + lrel
		}

		n, err := sp.add(hdr, tree, rel, io.LimitReader(tr, budget-total+1))
		total += n
		if total > budget {
			return nil, fmt.Errorf("more than %d bytes unpacked (at most %d, and a third of the free space beyond %d bytes)", budget, int64(maxUnpacked), int64(unpackReserve))
		}

		if err != nil {
			return nil, err
		}
	}

	trees, err := sp.Finish()
	if err != nil {
		return nil, err
	}

	return &split{index: idx, trees: trees, tops: sp.tops}, nil
}

func readIndex(tr *tar.Reader) (*index, error) {
	data, err := tarsafe.FirstFile(tr, indexName, maxIndexSize)
	if err != nil {
		return nil, err
	}

	idx := &index{}
	err = yaml.Unmarshal(data, idx)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", indexName, err)
	}

	return idx, nil
}

// member maps a member name to its tree and its path inside it ("" to skip the member,
// "." for the tree's top directory).
func member(name string, snaps map[string]bool) (string, string, error) {
	comps, err := tarsafe.Split(name)
	if err != nil {
		return "", "", err
	}

	if len(comps) < 2 || comps[0] != "backup" {
		return "", "", nil
	}

	switch {
	case comps[1] == "volume" && len(comps) == 2:
		return "", ".", nil
	case comps[1] == "volume":
		return "", strings.Join(comps[2:], "/"), nil
	case comps[1] == "volume-snapshots" && len(comps) == 3 && snaps[comps[2]]:
		return comps[2], ".", nil
	case comps[1] == "volume-snapshots" && len(comps) >= 4 && snaps[comps[2]]:
		return comps[2], strings.Join(comps[3:], "/"), nil
	}

	return "", "", nil
}

// split is a backup read by splitBackup.
type split struct {
	index *index
	trees map[string]string // tree ("" or a snapshot) -> its image-layout tarball
	tops  map[string]top    // tree -> its top directory's owner and mode, when archived
}

// top is the owner (container ids) and mode of a tree's top directory.
type top struct {
	uid, gid int
	mode     int64
}

// splitter writes members into per-tree tarballs, each under rootfs/.
type splitter struct {
	*tarsafe.Trees
	tops map[string]top
}

func (s *splitter) add(hdr *tar.Header, tree, rel string, r io.Reader) (int64, error) {
	out := *hdr
	out.Name = "rootfs/" + rel
	if hdr.Typeflag == tar.TypeDir {
		out.Name += "/"
	}

	if hdr.PAXRecords != nil {
		out.PAXRecords = maps.Clone(hdr.PAXRecords)
		delete(out.PAXRecords, "path")
		delete(out.PAXRecords, "linkpath")
	}

	tw, err := s.Writer(tree)
	if err != nil {
		return 0, err
	}

	err = tw.WriteHeader(&out)
	if err != nil {
		return 0, fmt.Errorf("splitting %q: %w", hdr.Name, err)
	}

	var n int64
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
		n, err = io.Copy(tw, r)
		if err != nil {
			return n, fmt.Errorf("splitting %q: %w", hdr.Name, err)
		}
	}

	return n, nil
}

// addTop starts tree's tarball with its rootfs/ directory (owner and mode are applied
// from tops after the copy), so a tree with no members is still a tree.
func (s *splitter) addTop(tree string) error {
	if s.Has(tree) {
		return nil
	}

	tw, err := s.Writer(tree)
	if err != nil {
		return err
	}

	return tw.WriteHeader(&tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755})
}
