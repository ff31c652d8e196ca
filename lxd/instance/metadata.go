package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/shared/api"
)

// An instance's image metadata: its own copy of the image's metadata.yaml and templates/
// in its directory (see instanceDir), which the templates render from at start. The
// administrator edits them through the API (lxc config metadata, lxc config template);
// they are host files, never the container's, but came from an image: every access is
// confined to the instance directory (os.Root), takes regular files only, never follows
// a symlink and is size-capped.

const (
	metadataFile = "metadata.yaml"
	templatesDir = "templates"

	// MaxTemplateSize bounds one template file, as images bound metadata.yaml.
	MaxTemplateSize = 1 << 20
	// maxTemplates bounds the files of templates/.
	maxTemplates = 1024
	// maxMetadataSize bounds metadata.yaml, as an image's.
	maxMetadataSize = 1 << 20
	// tmpPrefix starts the name of writeReplace's temporary files.
	tmpPrefix = ".tmp-"
)

// metadataMu serialises the edits of instances' metadata and templates: they are quick,
// and must not wait for the instance lock, which a stop holds for up to its timeout.
// Writes replace whole files by rename, so a start rendering templates needs no lock.
var metadataMu sync.Mutex

// Metadata returns the instance's image metadata; an instance without any (made from a
// backup that had none) has an empty one, as in LXD.
func (m *Manager) Metadata(ctx context.Context, name string) (*api.ImageMetadata, error) {
	metadataMu.Lock()
	defer metadataMu.Unlock()

	return m.readMetadata(ctx, name)
}

func (m *Manager) readMetadata(ctx context.Context, name string) (*api.ImageMetadata, error) {
	root, err := m.openInstanceDir(ctx, name)
	if err != nil {
		return nil, err
	}

	defer root.Close()

	data, err := readRegular(root, metadataFile, maxMetadataSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &api.ImageMetadata{}, nil
	}

	if err != nil {
		return nil, err
	}

	meta := &api.ImageMetadata{}
	err = yaml.Unmarshal(data, meta)
	if err != nil {
		return nil, fmt.Errorf("parsing metadata of %q: %w", name, err)
	}

	return meta, nil
}

// UpdateMetadata applies update to the instance's metadata under the instance's lock and
// writes the result, which must be valid image metadata (architecture, absolute template
// paths, plain template file names) no larger than an image's metadata.yaml.
func (m *Manager) UpdateMetadata(ctx context.Context, name string, update func(*api.ImageMetadata) error) error {
	metadataMu.Lock()
	defer metadataMu.Unlock()

	meta, err := m.readMetadata(ctx, name)
	if err != nil {
		return err
	}

	err = update(meta)
	if err != nil {
		return err
	}

	data, err := yaml.Marshal(meta)
	if err != nil {
		return err
	}

	if len(data) > maxMetadataSize {
		return api.StatusErrorf(http.StatusRequestEntityTooLarge, "metadata is larger than %d bytes", maxMetadataSize)
	}

	_, err = images.ParseMetadata(data)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid metadata: %v", err)
	}

	root, err := m.openInstanceDir(ctx, name)
	if err != nil {
		return err
	}

	defer root.Close()

	return writeReplace(root, metadataFile, strings.NewReader(string(data)), maxMetadataSize)
}

// Templates lists the files of the instance's templates/, sorted.
func (m *Manager) Templates(ctx context.Context, name string) ([]string, error) {
	metadataMu.Lock()
	defer metadataMu.Unlock()

	root, err := m.openTemplates(ctx, name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}

	if err != nil {
		return nil, err
	}

	defer root.Close()

	f, err := root.Open(".")
	if err != nil {
		return nil, err
	}

	defer f.Close()

	entries, err := f.ReadDir(maxTemplates + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}

	names := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && validTemplateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}

	slices.Sort(names)

	return names, nil
}

// Template returns the content of template file.
func (m *Manager) Template(ctx context.Context, name, file string) ([]byte, error) {
	err := validTemplateName(file)
	if err != nil {
		return nil, err
	}

	metadataMu.Lock()
	defer metadataMu.Unlock()

	root, err := m.openTemplates(ctx, name, false)
	if err == nil {
		defer root.Close()

		var data []byte
		data, err = readRegular(root, file, MaxTemplateSize)
		if err == nil {
			return data, nil
		}
	}

	if errors.Is(err, fs.ErrNotExist) {
		return nil, api.StatusErrorf(http.StatusNotFound, "template %q not found", file)
	}

	return nil, err
}

// PutTemplate creates or replaces template file with r's content (at most
// MaxTemplateSize bytes).
func (m *Manager) PutTemplate(ctx context.Context, name, file string, r io.Reader) error {
	err := validTemplateName(file)
	if err != nil {
		return err
	}

	metadataMu.Lock()
	defer metadataMu.Unlock()

	root, err := m.openTemplates(ctx, name, true)
	if err != nil {
		return err
	}

	defer root.Close()

	_, err = root.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		existing, err := m.countTemplates(root)
		if err != nil {
			return err
		}

		if existing >= maxTemplates {
			return api.StatusErrorf(http.StatusBadRequest, "instance %q has %d template files already", name, existing)
		}
	}

	return writeReplace(root, file, r, MaxTemplateSize)
}

// DeleteTemplate removes template file.
func (m *Manager) DeleteTemplate(ctx context.Context, name, file string) error {
	err := validTemplateName(file)
	if err != nil {
		return err
	}

	metadataMu.Lock()
	defer metadataMu.Unlock()

	root, err := m.openTemplates(ctx, name, false)
	if err == nil {
		defer root.Close()

		var fi os.FileInfo
		fi, err = root.Lstat(file)
		if err == nil && !fi.Mode().IsRegular() {
			return api.StatusErrorf(http.StatusBadRequest, "template %q is not a regular file", file)
		}

		if err == nil {
			err = root.Remove(file)
		}
	}

	if errors.Is(err, fs.ErrNotExist) {
		return api.StatusErrorf(http.StatusNotFound, "template %q not found", file)
	}

	return err
}

func (m *Manager) countTemplates(root *os.Root) (int, error) {
	f, err := root.Open(".")
	if err != nil {
		return 0, err
	}

	defer f.Close()

	names, err := f.Readdirnames(maxTemplates + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}

	return len(names), nil
}

// validTemplateName accepts what metadata.yaml may name as a template file: one plain
// path component, not hidden (writeReplace's temporary files are), short enough that
// its temporary name (tmpPrefix + file) fits NAME_MAX.
func validTemplateName(file string) error {
	if file == "" || len(tmpPrefix+file) > 255 || strings.HasPrefix(file, ".") || strings.ContainsAny(file, "/\x00") {
		return api.StatusErrorf(http.StatusBadRequest, "invalid template file name %q: want one plain file name", file)
	}

	return nil
}

// openInstanceDir opens the instance's directory as a root (404 if there is none).
func (m *Manager) openInstanceDir(ctx context.Context, name string) (*os.Root, error) {
	_, _, err := m.load(ctx, name) // 404 for an unknown instance
	if err != nil {
		return nil, err
	}

	root, err := os.OpenRoot(m.instanceDir(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, api.StatusErrorf(http.StatusNotFound, "instance %q has no directory", name)
	}

	return root, err
}

// openTemplates opens templates/ below the instance directory, creating it when asked.
// It must be a real directory, not a symlink.
func (m *Manager) openTemplates(ctx context.Context, name string, create bool) (*os.Root, error) {
	root, err := m.openInstanceDir(ctx, name)
	if err != nil {
		return nil, err
	}

	defer root.Close()

	fi, err := root.Lstat(templatesDir)
	if errors.Is(err, fs.ErrNotExist) && create {
		err = root.Mkdir(templatesDir, 0o755)
		if err == nil {
			fi, err = root.Lstat(templatesDir)
		}
	}

	if err != nil {
		return nil, err
	}

	if !fi.IsDir() {
		return nil, api.StatusErrorf(http.StatusConflict, "%s of instance %q is not a directory", templatesDir, name)
	}

	return root.OpenRoot(templatesDir)
}

// readRegular reads file in root: a regular file (not a symlink, FIFO or device) of at
// most limit bytes.
func readRegular(root *os.Root, file string, limit int64) ([]byte, error) {
	fi, err := root.Lstat(file)
	if err != nil {
		return nil, err
	}

	if fi.Mode()&os.ModeSymlink != 0 {
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is a symlink", file)
	}

	// O_NOFOLLOW still: it may have become one since.
	f, err := root.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}

	defer f.Close()

	fi, err = f.Stat()
	if err != nil {
		return nil, err
	}

	if !fi.Mode().IsRegular() {
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is not a regular file", file)
	}

	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}

	if int64(len(data)) > limit {
		return nil, api.StatusErrorf(http.StatusRequestEntityTooLarge, "%q is larger than %d bytes", file, limit)
	}

	return data, nil
}

// writeReplace writes r (at most limit bytes, else 413 and nothing changes) to a
// temporary file in root and renames it over file, so a reader never sees half a file;
// a symlink at file is replaced, never followed.
func writeReplace(root *os.Root, file string, r io.Reader, limit int64) error {
	tmp := tmpPrefix + file
	_ = root.Remove(tmp)

	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}

	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = api.StatusErrorf(http.StatusRequestEntityTooLarge, "%q would be larger than %d bytes", file, limit)
	}

	closeErr := f.Close()
	if err == nil {
		err = closeErr
	}

	if err == nil {
		err = root.Rename(tmp, file)
	}

	if err != nil {
		_ = root.Remove(tmp)
		return err
	}

	return nil
}
