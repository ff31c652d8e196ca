package streams

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Image is one image to publish: its unified tarball is at Path in the tree.
type Image struct {
	Fingerprint                        string // sha256 of the tarball
	Size                               int64
	Path                               string
	Created                            time.Time
	Aliases                            []string
	OS, Release, Variant, Architecture string
}

// ProductKey is the product an image belongs to, keyed as LXD's image server does
// (os:release:variant:arch).
func (img Image) ProductKey() string {
	part := func(s, def string) string {
		s = strings.NewReplacer(":", "_", ",", "_").Replace(strings.TrimSpace(s))
		if s == "" {
			return def
		}

		return s
	}

	return part(img.OS, "berth") + ":" + part(img.Release, "unknown") + ":" + part(img.Variant, "default") + ":" + part(img.Architecture, "unknown")
}

// Build returns index.json and images.json for imgs. Images of one product become its
// versions, named by creation date (and the fingerprint, to keep them apart); the
// product's aliases are those of all its images. Each version has the tarball twice,
// as LXD's and as Incus' item type, at the same path.
func Build(imgs []Image, now time.Time) (index, products []byte, err error) {
	updated := now.UTC().Format(time.RFC1123)
	p := Products{ContentID: "images", DataType: "image-downloads", Format: "products:1.0", Updated: updated, Products: map[string]Product{}}

	for _, img := range imgs {
		if !isSHA256(img.Fingerprint) {
			return nil, nil, fmt.Errorf("invalid fingerprint %q", img.Fingerprint)
		}

		err = CheckPath(img.Path)
		if err != nil {
			return nil, nil, err
		}

		key := img.ProductKey()
		parts := strings.Split(key, ":")
		prod, ok := p.Products[key]
		if !ok {
			prod = Product{OS: parts[0], Release: parts[1], Variant: parts[2], Architecture: parts[3], ReleaseTitle: parts[1], Versions: map[string]Version{}}
		}

		aliases := []string{}
		if prod.Aliases != "" {
			aliases = strings.Split(prod.Aliases, ",")
		}

		for _, a := range img.Aliases {
			if a != "" && !strings.Contains(a, ",") {
				aliases = append(aliases, a)
			}
		}

		sort.Strings(aliases)
		prod.Aliases = strings.Join(dedup(aliases), ",")

		it := Item{Path: img.Path, SHA256: img.Fingerprint, Size: img.Size}
		lxd, incus := it, it
		lxd.Ftype, incus.Ftype = FtypeLXD, FtypeIncus
		version := img.Created.UTC().Format("20060102_150405") + "_" + img.Fingerprint[:12]
		prod.Versions[version] = Version{Items: map[string]Item{"lxd_combined.tar.gz": lxd, "incus_combined.tar.gz": incus}}
		p.Products[key] = prod
	}

	keys := make([]string, 0, len(p.Products))
	for k := range p.Products {
		keys = append(keys, k)
	}

	sort.Strings(keys)
	idx := Index{Format: "index:1.0", Updated: updated, Index: map[string]IndexEntry{
		"images": {DataType: "image-downloads", Format: "products:1.0", Path: ProductsPath, Updated: updated, Products: keys},
	}}

	index, err = json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, nil, err
	}

	products, err = json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, nil, err
	}

	return index, products, nil
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}

	return out
}
