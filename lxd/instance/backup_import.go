package instance

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
	"github.com/berth-dev/berth/shared/validate"
)

// Import creates an instance from a backup tarball (see Export) and returns its name:
// name if set, else the one in the backup. The backup is hostile. It is split, member by
// member, into one image-layout tarball per tree (the instance and each snapshot): names
// are checked (no absolute path, no ".."), only members under the expected prefixes are
// kept, and a hard link must stay inside its own tree. Each tree is then unpacked by the
// image unpacker (parents resolved inside the tree with openat2, no device nodes), as a
// pool image the instance sits on, with a fresh id range.
func (m *Manager) Import(ctx context.Context, file, name string) (string, error) {
	err := os.MkdirAll(m.BackupsDir(), 0o700)
	if err != nil {
		return "", err
	}

	tmp, err := os.MkdirTemp(m.BackupsDir(), ".import-")
	if err != nil {
		return "", err
	}

	defer os.RemoveAll(tmp)

	index, trees, err := splitBackup(file, tmp)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "reading backup: %v", err)
	}

	if name == "" {
		name = index.Name
	}

	err = validate.InstanceName(name)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	if index.Config.Container == nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup has no instance config")
	}

	err = validateImported(index)
	if err != nil {
		return "", err
	}

	_, ok := trees[""]
	if !ok {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup has no %s/rootfs", backupContainer)
	}

	devices, err := m.importDevices(ctx, index.Config.Container)
	if err != nil {
		return "", err
	}

	err = m.checkRootSize("", nil, devices)
	if err != nil {
		return "", err
	}

	releaseName, err := m.reserveName(name)
	if err != nil {
		return "", err
	}

	defer releaseName()

	_, err = m.exists(ctx, name)
	if err == nil {
		return "", api.StatusErrorf(http.StatusConflict, "instance %q already exists", name)
	}

	base, release, err := m.allocateIDs(ctx)
	if err != nil {
		return "", err
	}

	defer release()
	ids := idmap.Set{HostUID: base, HostGID: m.cfg.IDs.GIDStart + (base - m.cfg.IDs.UIDStart), Size: idmap.DefaultSize}

	r := revert.New()
	defer r.Fail()
	r.Add(m.cfg.Pool.PruneBackupImages)

	err = os.MkdirAll(m.instanceDir(name), 0o755)
	if err != nil {
		return "", err
	}

	r.Add(func() { _ = os.RemoveAll(m.instanceDir(name)) })

	fps := map[string]string{}
	for tree, path := range trees {
		metaDir := m.instanceDir(name)
		if tree != "" {
			metaDir = filepath.Join(tmp, "meta-"+tree)
			err := os.Mkdir(metaDir, 0o700)
			if err != nil {
				return "", err
			}
		}

		fp := storage.BackupImagePrefix + backupRandom()
		err := m.cfg.Pool.CreateImage(fp, func(rootfsDir string) error {
			stats, err := (&images.Unpacker{Log: m.log}).Unpack(path, rootfsDir, metaDir)
			if stats.SkippedDevices > 0 {
				m.log.Warn("backup carried device nodes; skipped", "instance", name, "tree", tree, "count", stats.SkippedDevices)
			}

			return err
		})
		if err != nil {
			return "", api.StatusErrorf(http.StatusBadRequest, "unpacking backup: %v", err)
		}

		fps[tree] = fp
	}

	err = m.cfg.Pool.CreateInstanceFromImage(name, fps[""], ids)
	if err != nil {
		return "", err
	}

	r.Add(func() { _ = m.cfg.Pool.DeleteInstance(name) })

	err = m.applyRootSize(name, devices)
	if err != nil {
		return "", err
	}

	var snaps []db.Snapshot
	for _, s := range index.Config.Snapshots {
		fp, ok := fps[s.Name]
		if !ok {
			continue
		}

		err := m.cfg.Pool.CreateSnapshotFromImage(name, s.Name, fp, ids)
		if err != nil {
			return "", err
		}

		snaps = append(snaps, db.Snapshot{
			Instance: name, Name: s.Name, Architecture: s.Architecture, Ephemeral: s.Ephemeral,
			CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Devices: s.Devices, Profiles: s.Profiles,
			Config: importedConfig(s.Config),
		})
	}

	err = m.insertImported(ctx, name, index.Config.Container, ids, snaps)
	if err != nil {
		return "", err
	}

	// Dir instances hold copies: their images can go now.
	m.cfg.Pool.PruneBackupImages()
	r.Success()
	m.event("instance-created", name, map[string]any{"source": "backup"})
	return name, nil
}

// importDevices expands an imported instance's devices with the profiles it will get
// (insertImported: those of its profiles that exist here, else default).
func (m *Manager) importDevices(ctx context.Context, src *api.Instance) (map[string]map[string]string, error) {
	var devices map[string]map[string]string
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var names []string
		for _, p := range src.Profiles {
			_, err := tx.GetProfile(ctx, p)
			if err == nil {
				names = append(names, p)
			}
		}

		if len(names) == 0 {
			names = []string{"default"}
		}

		var err error
		devices, err = expandNew(ctx, tx, names, src.Devices)
		return err
	})

	return devices, err
}

func (m *Manager) insertImported(ctx context.Context, name string, src *api.Instance, ids idmap.Set, snaps []db.Snapshot) error {
	return m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		profiles := []string{}
		for _, p := range src.Profiles {
			_, err := tx.GetProfile(ctx, p)
			if err == nil {
				profiles = append(profiles, p)
			}
		}

		if len(profiles) == 0 {
			profiles = []string{"default"}
		}

		config := importedConfig(src.Config)
		err := ValidateConfig(config)
		if err != nil {
			return err
		}

		idJSON := idmapJSON(ids)
		config["volatile.uuid"] = uuid.NewString()
		config["volatile.idmap.base"] = strconv.FormatInt(ids.HostUID, 10)
		config["volatile.idmap.next"] = idJSON
		config["volatile.last_state.idmap"] = idJSON
		config["volatile.last_state.power"] = "STOPPED"

		devices := src.Devices
		if devices == nil {
			devices = map[string]map[string]string{}
		}

		_, err = tx.CreateInstance(ctx, db.Instance{
			Name: name, Type: api.InstanceTypeContainer, Architecture: src.Architecture,
			Description: src.Description, Ephemeral: src.Ephemeral, CreatedAt: time.Now().UTC(),
			Config: config, Devices: devices, Profiles: profiles,
		})
		if err != nil {
			return err
		}

		for _, s := range snaps {
			if s.Profiles == nil {
				s.Profiles = profiles
			}

			_, err := tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	})
}

// validateImported checks the config and devices a backup brings, the instance's and each
// snapshot's (a restore makes them the instance's), with the validators of a create
// request and their errors, before anything is created. Devices that reach the host are
// refused outright: a backup is hostile input, and a host path, device node, host socket
// or host interface it names is not the admin's choice. The admin adds them again after
// the import if they are wanted.
func validateImported(index *BackupIndex) error {
	c := index.Config.Container
	err := validateImportedOne("", c.Config, c.Devices)
	if err != nil {
		return err
	}

	for _, s := range index.Config.Snapshots {
		err := validateImportedOne(" snapshot "+strconv.Quote(s.Name), s.Config, s.Devices)
		if err != nil {
			return err
		}
	}

	return nil
}

func validateImportedOne(what string, config map[string]string, devices map[string]map[string]string) error {
	for _, name := range sortedDevices(devices) {
		why := hostReaching(devices[name])
		if why != "" {
			return api.StatusErrorf(http.StatusBadRequest, "backup%s: device %q (%s) %s: refused in an imported backup; add it again after the import", what, name, devices[name]["type"], why)
		}
	}

	err := ValidateDevices(devices)
	if err == nil {
		err = ValidateConfig(importedConfig(config))
	}

	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "backup%s: %v", what, err)
	}

	return nil
}

// hostReaching says why a device gives the container something of the host's, or "".
func hostReaching(d map[string]string) string {
	switch d["type"] {
	case "disk":
		if d["source"] != "" || d["path"] != "/" {
			return "shares a host path"
		}
	case "unix-char", "unix-block":
		return "gives a host device node"
	case "proxy":
		return "opens a host socket"
	case "nic":
		if d["parent"] != "" || d["nictype"] != "" && d["nictype"] != "bridged" {
			return "attaches to a host interface"
		}
	}

	return ""
}

// importedConfig keeps a backup's settings but none of its identity: volatile keys go,
// except the base image.
func importedConfig(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if !strings.HasPrefix(k, "volatile.") || k == "volatile.base_image" {
			out[k] = v
		}
	}

	return out
}

func backupRandom() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// maxIndexSize bounds backup/index.yaml.
const maxIndexSize = 4 << 20

// splitBackup reads a backup and writes one uncompressed image-layout tarball per tree into
// dir: trees[""] for the instance (rootfs/, metadata.yaml, templates/), trees[snap] for
// each snapshot listed in the index (rootfs/ only).
func splitBackup(file, dir string) (*BackupIndex, map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}

	defer f.Close()
	tr, closer, err := images.OpenTar(f)
	if err != nil {
		return nil, nil, err
	}

	defer closer.Close()
	index, err := readIndex(tr)
	if err != nil {
		return nil, nil, err
	}

	snaps := map[string]bool{}
	for _, s := range index.Snapshots {
		err := validSnapshotName(s)
		if err != nil || snaps[s] {
			return nil, nil, fmt.Errorf("bad or repeated snapshot name %q in index", s)
		}

		snaps[s] = true
	}

	out := &treeSplitter{dir: dir, files: map[string]*os.File{}, writers: map[string]*tar.Writer{}, paths: map[string]string{}}
	defer out.closeAll()

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return nil, nil, err
		}

		tree, rel, err := backupMember(hdr.Name, snaps)
		if err != nil {
			return nil, nil, err
		}

		if rel == "" {
			continue // the index again, a directory of the layout, or a foreign member
		}

		err = out.add(hdr, tree, rel, tr, snaps)
		if err != nil {
			return nil, nil, err
		}
	}

	err = out.finish()
	if err != nil {
		return nil, nil, err
	}

	return index, out.paths, nil
}

func readIndex(tr *tar.Reader) (*BackupIndex, error) {
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("looking for %s: %w", backupIndex, err)
		}

		if hdr.Typeflag == tar.TypeDir {
			continue
		}

		if strings.TrimPrefix(hdr.Name, "./") != backupIndex || hdr.Typeflag != tar.TypeReg || hdr.Size > maxIndexSize {
			return nil, fmt.Errorf("the first file of a backup must be %s", backupIndex)
		}

		data, err := io.ReadAll(io.LimitReader(tr, maxIndexSize))
		if err != nil {
			return nil, err
		}

		index := &BackupIndex{}
		err = yaml.Unmarshal(data, index)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", backupIndex, err)
		}

		return index, nil
	}
}

// backupMember maps a member name to its tree and its name inside that tree's image
// layout ("" to skip the member). Absolute names and ".." are refused outright.
func backupMember(name string, snaps map[string]bool) (string, string, error) {
	if strings.HasPrefix(name, "/") {
		return "", "", fmt.Errorf("member %q is absolute", name)
	}

	var comps []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", "", fmt.Errorf("member %q contains \"..\"", name)
		}

		comps = append(comps, c)
	}

	if len(comps) < 3 || comps[0] != "backup" {
		return "", "", nil
	}

	switch {
	case comps[1] == "container":
		return "", strings.Join(comps[2:], "/"), nil
	case comps[1] == "snapshots" && len(comps) >= 4 && snaps[comps[2]] && comps[3] == "rootfs":
		return comps[2], strings.Join(comps[3:], "/"), nil
	}

	return "", "", nil
}

// treeSplitter writes members into per-tree tarballs.
type treeSplitter struct {
	dir     string
	files   map[string]*os.File
	writers map[string]*tar.Writer
	paths   map[string]string
}

func (s *treeSplitter) add(hdr *tar.Header, tree, rel string, r io.Reader, snaps map[string]bool) error {
	out := *hdr
	out.Name = rel
	if hdr.Typeflag == tar.TypeDir {
		out.Name += "/"
	}

	if hdr.Typeflag == tar.TypeLink {
		linkTree, linkRel, err := backupMember(hdr.Linkname, snaps)
		if err != nil || linkRel == "" || linkTree != tree {
			return fmt.Errorf("hard link %q points outside its tree (%q)", hdr.Name, hdr.Linkname)
		}

		out.Linkname = linkRel
	}

	tw, err := s.writer(tree)
	if err != nil {
		return err
	}

	err = tw.WriteHeader(&out)
	if err != nil {
		return fmt.Errorf("splitting %q: %w", hdr.Name, err)
	}

	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
		_, err = io.Copy(tw, r)
		if err != nil {
			return fmt.Errorf("splitting %q: %w", hdr.Name, err)
		}
	}

	return nil
}

func (s *treeSplitter) writer(tree string) (*tar.Writer, error) {
	tw := s.writers[tree]
	if tw != nil {
		return tw, nil
	}

	f, err := os.CreateTemp(s.dir, "tree-*.tar")
	if err != nil {
		return nil, err
	}

	s.files[tree], s.paths[tree] = f, f.Name()
	tw = tar.NewWriter(f)
	s.writers[tree] = tw
	return tw, nil
}

func (s *treeSplitter) finish() error {
	for tree, tw := range s.writers {
		err := tw.Close()
		if err == nil {
			err = s.files[tree].Close()
		}

		if err != nil {
			return err
		}

		delete(s.files, tree)
	}

	return nil
}

func (s *treeSplitter) closeAll() {
	for _, f := range s.files {
		_ = f.Close()
	}
}
