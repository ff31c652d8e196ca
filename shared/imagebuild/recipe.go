// Package imagebuild builds Berth's images from the recipes embedded in package images:
// debootstrap, customize.sh in a chroot, then a unified tarball (lxd-api.md §8).
//
// The CLI uses it (`berth image build debian/12`), so it imports no daemon package.
package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/images"
	"github.com/berth-dev/berth/templates"
)

// buildFormat is hashed into RecipeHash: bump it when Build's output changes for the same
// recipe files, so cached tarballs are rebuilt.
const buildFormat = "berth-imagebuild-1"

// Recipe is a recipe.yaml.
type Recipe struct {
	Distribution string   `yaml:"distribution"`
	Suite        string   `yaml:"suite"`
	Variant      string   `yaml:"variant"`
	Architecture string   `yaml:"architecture"` // debootstrap's name, e.g. amd64
	Components   []string `yaml:"components"`
	Include      []string `yaml:"include"`
}

// recipeDir maps an image name ("debian/12" or "debian-12") to its directory in images.FS.
func recipeDir(name string) (string, error) {
	dir := strings.ReplaceAll(name, "/", "-")
	if dir == "" || dir == "." || strings.Contains(dir, "..") {
		return "", fmt.Errorf("invalid image name %q", name)
	}

	_, err := fs.Stat(images.FS, path.Join(dir, "recipe.yaml"))
	if err != nil {
		return "", fmt.Errorf("unknown image %q (known: %s)", name, strings.Join(Names(), ", "))
	}

	return dir, nil
}

// Names lists the images that have a recipe, as "distribution/release".
func Names() []string {
	entries, _ := fs.ReadDir(images.FS, ".")

	var names []string

	for _, e := range entries {
		if e.IsDir() {
			names = append(names, strings.Replace(e.Name(), "-", "/", 1))
		}
	}

	return names
}

// LoadRecipe reads and checks the recipe of image name.
func LoadRecipe(name string) (*Recipe, error) {
	dir, err := recipeDir(name)
	if err != nil {
		return nil, err
	}

	data, err := fs.ReadFile(images.FS, path.Join(dir, "recipe.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading recipe of %q: %w", name, err)
	}

	var r Recipe

	err = yaml.Unmarshal(data, &r)
	if err != nil {
		return nil, fmt.Errorf("parsing recipe of %q: %w", name, err)
	}

	if r.Suite == "" || r.Architecture == "" {
		return nil, fmt.Errorf("recipe of %q needs suite and architecture", name)
	}

	if r.Variant == "" {
		r.Variant = "minbase"
	}

	if len(r.Components) == 0 {
		r.Components = []string{"main"}
	}

	return &r, nil
}

// RecipeHash returns the hex SHA-256 of image name's recipe files and of every shipped
// template: the cache key of its built tarball.
func RecipeHash(name string) (string, error) {
	dir, err := recipeDir(name)
	if err != nil {
		return "", err
	}

	h := sha256.New()
	h.Write([]byte(buildFormat + "\x00"))

	for _, src := range []struct {
		fsys fs.FS
		root string
		tag  string
	}{{images.FS, dir, "recipe"}, {templates.FS, ".", "templates"}} {
		var files []string

		err := fs.WalkDir(src.fsys, src.root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}

			if !d.IsDir() {
				files = append(files, p)
			}

			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing recipe of %q: %w", name, err)
		}

		sort.Strings(files)

		for _, f := range files {
			data, err := fs.ReadFile(src.fsys, f)
			if err != nil {
				return "", fmt.Errorf("hashing recipe of %q: %w", name, err)
			}

			fmt.Fprintf(h, "%s/%s\x00%d\x00", src.tag, f, len(data))
			h.Write(data)
		}
	}

	return hex.EncodeToString(h.Sum(nil)), nil
}
