package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/shared/api"
)

// architectureAliases maps distribution and Go names to LXD's architecture names.
var architectureAliases = map[string]string{
	"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64",
	"i686": "i686", "i386": "i686", "i486": "i686", "i586": "i686", "386": "i686", "x86": "i686",
	"aarch64": "aarch64", "arm64": "aarch64", "armv8": "aarch64",
	"armv7l": "armv7l", "armhf": "armv7l", "armel": "armv7l", "arm": "armv7l", "armv7": "armv7l",
	"ppc64le": "ppc64le", "ppc64el": "ppc64le",
	"ppc64": "ppc64", "powerpc64": "ppc64",
	"ppc": "ppc", "powerpc": "ppc",
	"s390x": "s390x",
	"mips":  "mips", "mips64": "mips64",
	"riscv64": "riscv64", "riscv32": "riscv32",
	"loongarch64": "loongarch64", "loong64": "loongarch64",
}

// ArchitectureName returns LXD's name for an architecture or one of its aliases
// ("amd64" -> "x86_64").
func ArchitectureName(arch string) (string, error) {
	name, ok := architectureAliases[strings.ToLower(strings.TrimSpace(arch))]
	if !ok {
		return "", fmt.Errorf("unknown architecture %q", arch)
	}

	return name, nil
}

// ParseMetadata decodes and validates metadata.yaml. The architecture is normalised to
// LXD's name and template paths are cleaned.
func ParseMetadata(data []byte) (*api.ImageMetadata, error) {
	var meta api.ImageMetadata

	err := yaml.Unmarshal(data, &meta)
	if err != nil {
		return nil, fmt.Errorf("parsing metadata.yaml: %w", err)
	}

	err = validateMetadata(&meta)
	if err != nil {
		return nil, fmt.Errorf("validating metadata.yaml: %w", err)
	}

	return &meta, nil
}

func validateMetadata(meta *api.ImageMetadata) error {
	if meta.Architecture == "" {
		return errors.New("architecture is missing")
	}

	arch, err := ArchitectureName(meta.Architecture)
	if err != nil {
		return err
	}

	meta.Architecture = arch

	paths := make([]string, 0, len(meta.Templates))
	for p := range meta.Templates {
		paths = append(paths, p)
	}

	sort.Strings(paths)

	cleaned := make(map[string]*api.ImageMetadataTemplate, len(paths))
	for _, p := range paths {
		tpl := meta.Templates[p]
		if tpl == nil {
			return fmt.Errorf("template for %q is empty", p)
		}

		if !path.IsAbs(p) || path.Clean(p) == "/" {
			return fmt.Errorf("template path %q is not an absolute file path", p)
		}

		if !isPlainName(tpl.Template) {
			return fmt.Errorf("template file %q for %q must be a plain file name", tpl.Template, p)
		}

		cleaned[path.Clean(p)] = tpl
	}

	if meta.Templates != nil {
		meta.Templates = cleaned
	}

	return nil
}

// isPlainName reports whether name is a single path component.
func isPlainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// ReadMetadata reads and validates metadata.yaml from a unified image tarball, and reports
// whether it holds a container root filesystem (rootfs/ entries). It stops reading as soon
// as both are known, which is at the start of tarballs written by Pack.
func ReadMetadata(tarball string) (*api.ImageMetadata, bool, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, false, fmt.Errorf("opening image %q: %w", tarball, err)
	}

	defer f.Close()

	tr, closer, err := OpenTar(f)
	if err != nil {
		return nil, false, err
	}

	defer closer.Close()

	return readMetadata(tr, tarball)
}

// readMetadata is ReadMetadata on an opened tarball; tarball names it in errors.
func readMetadata(tr *tar.Reader, tarball string) (*api.ImageMetadata, bool, error) {
	var (
		meta      *api.ImageMetadata
		hasRootfs bool
	)

	for meta == nil || !hasRootfs {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return nil, false, fmt.Errorf("reading image %q: %w", tarball, err)
		}

		name := strings.TrimPrefix(strings.TrimLeft(hdr.Name, "/"), "./")
		switch {
		case name == "metadata.yaml" && hdr.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(io.LimitReader(tr, maxMetadataSize+1))
			if err != nil {
				return nil, false, fmt.Errorf("reading metadata.yaml: %w", err)
			}

			if len(data) > maxMetadataSize {
				return nil, false, errors.New("metadata.yaml is larger than 1 MiB")
			}

			meta, err = ParseMetadata(data)
			if err != nil {
				return nil, false, err
			}
		case name == "rootfs" || strings.HasPrefix(name, "rootfs/"):
			hasRootfs = true
		}
	}

	if meta == nil {
		return nil, false, fmt.Errorf("image %q has no metadata.yaml", tarball)
	}

	return meta, hasRootfs, nil
}

const maxMetadataSize = 1 << 20
