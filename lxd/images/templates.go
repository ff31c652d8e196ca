package images

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/flosch/pongo2/v6"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/shared/api"
)

// Template triggers (lxd-api.md §8.3).
const (
	TriggerCreate = "create"
	TriggerCopy   = "copy"
	TriggerRename = "rename"
	TriggerStart  = "start"
)

// TemplateContext is what templates see of the instance.
type TemplateContext struct {
	Name         string
	Architecture string
	Ephemeral    bool
	Privileged   bool
	Config       map[string]string            // expanded config
	Devices      map[string]map[string]string // expanded devices
}

// RenderTemplates renders the templates of meta whose `when` holds trigger into rootfs.
// Template files are read from metaDir/templates only. rootfs is the container's (hostile)
// tree: targets are opened with openat2 RESOLVE_IN_ROOT, so symlinks resolve inside it.
// Existing targets are truncated and rewritten (skipped with create_only); new files get
// mode 0644 and new parents 0755, owned by hostUID:hostGID (the container's root). A
// target is opened for writing, or created, only once its template has rendered.
func RenderTemplates(rootfs, metaDir string, meta *api.ImageMetadata, trigger string, tctx TemplateContext, hostUID, hostGID int64) error {
	if meta == nil || len(meta.Templates) == 0 {
		return nil
	}

	tplRoot, err := os.OpenRoot(filepath.Join(metaDir, "templates"))
	if err != nil {
		return fmt.Errorf("opening image templates: %w", err)
	}

	defer tplRoot.Close()

	set, err := newTemplateSet(tplRoot)
	if err != nil {
		return err
	}

	rootFd, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening instance rootfs %q: %w", rootfs, err)
	}

	defer unix.Close(rootFd)

	paths := make([]string, 0, len(meta.Templates))
	for p := range meta.Templates {
		paths = append(paths, p)
	}

	sort.Strings(paths)

	for _, p := range paths {
		tpl := meta.Templates[p]
		if tpl == nil || !slices.Contains(tpl.When, trigger) {
			continue
		}

		err := renderOne(set, tplRoot, rootFd, p, tpl, trigger, tctx, int(hostUID), int(hostGID))
		if err != nil {
			return fmt.Errorf("rendering template %q for %q: %w", tpl.Template, p, err)
		}
	}

	return nil
}

func renderOne(set *pongo2.TemplateSet, tplRoot *os.Root, rootFd int, target string, tpl *api.ImageMetadataTemplate, trigger string, tctx TemplateContext, uid, gid int) error {
	if !isPlainName(tpl.Template) {
		return errors.New("template file must be a plain file name")
	}

	rel := strings.TrimPrefix(path.Clean("/"+target), "/")
	if rel == "" {
		return errors.New("target is the root directory")
	}

	// O_PATH: create_only skips without touching the target, and nothing is opened for
	// writing (a fifo never blocks us) until the template has rendered.
	pfd, err := openInRoot(rootFd, rel, unix.O_PATH, 0)
	exists := err == nil
	switch {
	case exists:
		defer unix.Close(pfd)

		if tpl.CreateOnly {
			return nil
		}
	case errors.Is(err, unix.ENOENT): // created once the template has rendered
	default:
		return fmt.Errorf("opening target: %w", err)
	}

	out, err := render(set, tplRoot, target, trigger, tpl, tctx)
	if err != nil {
		return err
	}

	// Templates render before the container runs, on its rootfs mounted on the host, where
	// none of its mounts exist; should one ever be crossed, no kernel file is written. The
	// existing target is opened truncated, which also spares an overlay root its copy-up
	// of the old content, and the fsync the kernel does after copying a file's data up
	// (0.3-0.8 ms per file of a first start).
	var f *os.File
	if exists {
		f, err = fileio.OpenExisting(pfd, target)
	} else {
		f, err = createTarget(rootFd, rel, target, uid, gid)
	}

	if err != nil {
		return err
	}

	_, err = f.Write(out)
	cerr := f.Close()
	if err == nil {
		err = cerr
	}

	if err != nil {
		return fmt.Errorf("writing target: %w", err)
	}

	return nil
}

// render executes template tpl for target.
func render(set *pongo2.TemplateSet, tplRoot *os.Root, target, trigger string, tpl *api.ImageMetadataTemplate, tctx TemplateContext) ([]byte, error) {
	src, err := tplRoot.ReadFile(tpl.Template)
	if err != nil {
		return nil, fmt.Errorf("reading template: %w", err)
	}

	// Autoescaping is a process-wide pongo2 default, so turn it off per template instead.
	t, err := set.FromBytes(append(append([]byte("{% autoescape off %}"), src...), "{% endautoescape %}"...))
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}

	var out bytes.Buffer

	err = t.ExecuteWriter(templateVars(target, trigger, tpl, tctx), &out)
	if err != nil {
		return nil, fmt.Errorf("executing template: %w", err)
	}

	return out.Bytes(), nil
}

// createTarget creates a missing target (createInRoot) and checks where it landed.
func createTarget(rootFd int, rel, target string, uid, gid int) (*os.File, error) {
	fd, err := createInRoot(rootFd, rel, uid, gid)
	if err != nil {
		return nil, err
	}

	f := os.NewFile(uintptr(fd), target)

	err = fileio.CheckWritable(fd, target)
	if err != nil {
		_ = f.Close()
		return nil, err
	}

	return f, nil
}

// createInRoot creates rel (and missing parents, 0755) beneath rootFd with mode 0644 and
// the given owner.
func createInRoot(rootFd int, rel string, uid, gid int) (int, error) {
	parent, base := path.Split(rel)

	pfd, err := mkdirAllInRoot(rootFd, strings.TrimSuffix(parent, "/"), 0o755, uid, gid)
	if err != nil {
		return -1, fmt.Errorf("creating parent directory of target: %w", err)
	}

	if pfd != rootFd {
		defer unix.Close(pfd)
	}

	// base is one component in a directory resolved inside the root; O_EXCL|O_NOFOLLOW also
	// refuses a dangling symlink raced in at the final component.
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, fmt.Errorf("creating target: %w", err)
	}

	err = unix.Fchown(fd, uid, gid)
	if err == nil {
		err = unix.Fchmod(fd, 0o644)
	}

	if err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("setting owner of target: %w", err)
	}

	return fd, nil
}

func templateVars(target, trigger string, tpl *api.ImageMetadataTemplate, tctx TemplateContext) pongo2.Context {
	instance := map[string]string{
		"name":         tctx.Name,
		"type":         "container",
		"architecture": tctx.Architecture,
		"ephemeral":    strconv.FormatBool(tctx.Ephemeral),
		"privileged":   strconv.FormatBool(tctx.Privileged),
	}

	config := api.NonNil(tctx.Config)

	devices := api.NonNil(tctx.Devices)

	props := api.NonNil(tpl.Properties)

	configGet := func(key, def *pongo2.Value) *pongo2.Value {
		val, ok := config[key.String()]
		if !ok {
			return def
		}

		return pongo2.AsValue(strings.TrimRight(val, "\r\n"))
	}

	return pongo2.Context{
		"trigger":    trigger,
		"path":       target,
		"instance":   instance,
		"container":  instance,
		"config":     config,
		"devices":    devices,
		"properties": props,
		"config_get": configGet,
	}
}

// newTemplateSet returns a pongo2 set whose include/import/extends read only from root, and
// without the ssi tag, which reads arbitrary host files behind the loader's back.
func newTemplateSet(root *os.Root) (*pongo2.TemplateSet, error) {
	set := pongo2.NewSet("image-templates", rootLoader{root: root})

	err := set.BanTag("ssi")
	if err != nil {
		return nil, fmt.Errorf("configuring template set: %w", err)
	}

	return set, nil
}

// rootLoader serves template files from an os.Root, which refuses absolute paths, ".."
// escapes and symlinks leading outside it.
type rootLoader struct {
	root *os.Root
}

func (l rootLoader) Abs(base, name string) string {
	return name
}

func (l rootLoader) Get(name string) (io.Reader, error) {
	data, err := l.root.ReadFile(strings.TrimPrefix(name, "./"))
	if err != nil {
		return nil, err
	}

	return bytes.NewReader(data), nil
}
