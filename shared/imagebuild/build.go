package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/klauspost/compress/gzip"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/images"
	"github.com/berth-dev/berth/shared/imagebuild/tarball"
	"github.com/berth-dev/berth/templates"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// Build builds image name (e.g. "debian/12") into a gzip unified tarball at out, replacing
// it atomically. It needs root and network access to the Debian mirror the host's apt uses.
// progress, if not nil, receives the stage name and the overall percentage.
func Build(ctx context.Context, name, out string, progress func(stage string, pct int)) error {
	recipe, err := LoadRecipe(name)
	if err != nil {
		return err
	}

	dir, err := recipeDir(name)
	if err != nil {
		return err
	}

	_, err = findDebootstrap()
	if err != nil {
		return err
	}

	prog := &tracker{report: progress}
	prog.step(stageStart, 0)

	// Build next to out so the final rename is atomic and the tree lands on out's filesystem.
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".berth-build-")
	if err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}

	// Unless a mount is left in it, the tree goes whatever happens.
	defer func() { _ = removeTree(tmp) }()

	rootfs := filepath.Join(tmp, "rootfs")
	metaDir := filepath.Join(tmp, "meta")

	err = debootstrap(ctx, recipe, rootfs, Mirror(recipe.Suite), prog)
	if err != nil {
		return err
	}

	prog.step(stageCustomize, 0)

	err = customize(ctx, dir, rootfs)
	if err != nil {
		return err
	}

	err = writeMetadata(dir, metaDir, time.Now())
	if err != nil {
		return err
	}

	prog.step(stagePack, 0)

	err = packAtomic(rootfs, metaDir, out)
	if err != nil {
		return err
	}

	prog.step(stageDone, 0)

	return nil
}

// customize runs the recipe's customize.sh inside rootfs with chroot, in a private mount
// namespace. The script needs no /proc or /dev: systemctl works offline on unit files.
func customize(ctx context.Context, dir, rootfs string) error {
	script, err := fs.ReadFile(images.FS, path.Join(dir, "customize.sh"))
	if err != nil {
		return fmt.Errorf("reading customize.sh: %w", err)
	}

	cmd := isolatedCommand(ctx, "chroot", rootfs, "/bin/sh", "-s")
	cmd.Env = append(cmd.Env, "BERTH_IMAGE_CHROOT=1")
	cmd.Stdin = bytes.NewReader(script)

	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("running customize.sh in %q: %w\n%s", rootfs, err, strings.TrimSpace(string(out)))
	}

	return nil
}

// imageMetadata mirrors shared/api.ImageMetadata (imagebuild imports no API package).
type imageMetadata struct {
	Architecture string                    `yaml:"architecture"`
	CreationDate int64                     `yaml:"creation_date"`
	ExpiryDate   int64                     `yaml:"expiry_date,omitempty"`
	Properties   map[string]string         `yaml:"properties,omitempty"`
	Templates    map[string]*imageTemplate `yaml:"templates,omitempty"`
}

type imageTemplate struct {
	When       []string          `yaml:"when"`
	CreateOnly bool              `yaml:"create_only"`
	Template   string            `yaml:"template"`
	Properties map[string]string `yaml:"properties"`
}

// writeMetadata writes metaDir/metadata.yaml (stamped with now) and the templates it uses.
func writeMetadata(dir, metaDir string, now time.Time) error {
	data, err := fs.ReadFile(images.FS, path.Join(dir, "metadata.yaml"))
	if err != nil {
		return fmt.Errorf("reading recipe metadata.yaml: %w", err)
	}

	var meta imageMetadata

	err = yaml.Unmarshal(data, &meta)
	if err != nil {
		return fmt.Errorf("parsing recipe metadata.yaml: %w", err)
	}

	meta.CreationDate = now.Unix()

	data, err = yaml.Marshal(&meta)
	if err != nil {
		return fmt.Errorf("encoding metadata.yaml: %w", err)
	}

	err = os.MkdirAll(filepath.Join(metaDir, "templates"), 0o755)
	if err != nil {
		return fmt.Errorf("creating metadata directory: %w", err)
	}

	err = os.WriteFile(filepath.Join(metaDir, "metadata.yaml"), data, 0o644)
	if err != nil {
		return fmt.Errorf("writing metadata.yaml: %w", err)
	}

	for target, tpl := range meta.Templates {
		if tpl == nil || tpl.Template == "" || strings.Contains(tpl.Template, "/") {
			return fmt.Errorf("recipe template for %q needs a plain file name", target)
		}

		body, err := fs.ReadFile(templates.FS, tpl.Template)
		if err != nil {
			return fmt.Errorf("reading template %q: %w", tpl.Template, err)
		}

		err = os.WriteFile(filepath.Join(metaDir, "templates", tpl.Template), body, 0o644)
		if err != nil {
			return fmt.Errorf("writing template %q: %w", tpl.Template, err)
		}
	}

	return nil
}

// packAtomic packs into a temporary file next to out, syncs it and renames it over out.
func packAtomic(rootfs, metaDir, out string) error {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating image file: %w", err)
	}

	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()

	w := bufio.NewWriterSize(f, 1<<20)

	// gzip: the format stock LXD and every tool read, via klauspost's fast implementation.
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err == nil {
		err = tarball.Pack(gz, rootfs, metaDir)
		cerr := gz.Close()
		if err == nil {
			err = cerr
		}
	}

	if err == nil {
		err = w.Flush()
	}

	if err == nil {
		err = f.Chmod(0o644)
	}

	if err == nil {
		err = f.Sync()
	}

	if err != nil {
		return fmt.Errorf("packing image %q: %w", out, err)
	}

	err = f.Close()
	if err != nil {
		return fmt.Errorf("closing image %q: %w", out, err)
	}

	err = os.Rename(f.Name(), out)
	if err != nil {
		return fmt.Errorf("renaming image to %q: %w", out, err)
	}

	done = true

	return nil
}

// removeTree removes a build tree, first detaching any mount below it (none are expected:
// builds run in private mount namespaces). It refuses to remove a tree that still has one,
// since RemoveAll would descend into the mounted filesystem.
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}

	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}

	mounts, err = mountsUnder(dir)
	if err != nil {
		return err
	}

	if len(mounts) > 0 {
		return fmt.Errorf("not removing %q: still mounted at %v", dir, mounts)
	}

	return os.RemoveAll(dir)
}

// mountsUnder lists mount points at or below dir, in mount order.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}

	return mountinfo.Under(mounts, dir), nil
}

// CachedBuild returns cacheDir/<name-with-dash>-<hash[:16]>.tar.gz, building it first if it
// is missing. A lock file serialises concurrent callers (other processes included), so
// only one of them builds.
func CachedBuild(ctx context.Context, name, cacheDir string, progress func(stage string, pct int)) (string, error) {
	hash, err := RecipeHash(name)
	if err != nil {
		return "", err
	}

	prefix := strings.ReplaceAll(name, "/", "-")
	base := prefix + "-" + hash[:16]
	out := filepath.Join(cacheDir, base+".tar.gz")

	_, err = os.Stat(out)
	if err == nil {
		return out, nil
	}

	err = os.MkdirAll(cacheDir, 0o755)
	if err != nil {
		return "", fmt.Errorf("creating image cache %q: %w", cacheDir, err)
	}

	unlock, err := lockFile(ctx, filepath.Join(cacheDir, base+".lock"))
	if err != nil {
		return "", err
	}

	defer unlock()

	// Another process may have built it while we waited.
	_, err = os.Stat(out)
	if err == nil {
		return out, nil
	}

	err = Build(ctx, name, out, progress)
	if err != nil {
		return "", err
	}

	pruneCache(cacheDir, prefix, out)
	return out, nil
}

// cacheKeep is how many tarballs of one image the cache keeps: the one just built and the
// one before it (a bench compares an image with its predecessor). Every recipe change
// builds another ~70 MB, which nothing removed.
const cacheKeep = 2

// pruneCache removes the tarballs of image prefix in cacheDir (<prefix>-<16 hex>.tar.gz)
// but the cacheKeep newest, never current. Their lock files stay: an empty file, which a
// process may hold at this moment.
func pruneCache(cacheDir, prefix, current string) {
	paths, _ := filepath.Glob(filepath.Join(cacheDir, prefix+"-*.tar.gz"))
	type tarball struct {
		path string
		mod  time.Time
	}

	var olds []tarball
	for _, p := range paths {
		hash := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), prefix+"-"), ".tar.gz")
		fi, err := os.Stat(p)
		if p == current || len(hash) != 16 || strings.Trim(hash, "0123456789abcdef") != "" || err != nil {
			continue
		}

		olds = append(olds, tarball{p, fi.ModTime()})
	}

	sort.Slice(olds, func(i, j int) bool { return olds[i].mod.After(olds[j].mod) })
	for i, t := range olds {
		if i >= cacheKeep-1 {
			_ = os.Remove(t.path)
		}
	}
}

// lockFile takes an exclusive flock on p, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %q: %w", p, err)
	}

	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}

		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %q: %w", p, err)
		}

		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock %q: %w", p, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
