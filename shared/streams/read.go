package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// decode unmarshals a document of at most max bytes into v, refusing trailing data.
func decode(data []byte, max int, v any) error {
	if len(data) > max {
		return fmt.Errorf("document of %d bytes, more than the %d allowed", len(data), max)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(v)
	if err != nil {
		return fmt.Errorf("invalid simplestreams document: %w", err)
	}

	if dec.More() {
		return fmt.Errorf("invalid simplestreams document: trailing data")
	}

	return nil
}

// ParseIndex reads index.json and returns the path of its image products file.
func ParseIndex(data []byte) (string, error) {
	var idx Index
	err := decode(data, MaxIndexSize, &idx)
	if err != nil {
		return "", err
	}

	// Entries in a stable order: the first image-downloads one wins, as LXD's client.
	keys := make([]string, 0, len(idx.Index))
	for k := range idx.Index {
		keys = append(keys, k)
	}

	sort.Strings(keys)
	for _, k := range keys {
		e := idx.Index[k]
		if e.DataType != "image-downloads" {
			continue
		}

		err = CheckPath(e.Path)
		if err != nil {
			return "", fmt.Errorf("index entry %q: %w", k, err)
		}

		return e.Path, nil
	}

	return "", fmt.Errorf("the index lists no image-downloads products file")
}

// ParseProducts reads a products file.
func ParseProducts(data []byte) (*Products, error) {
	var p Products
	err := decode(data, MaxProductsSize, &p)
	if err != nil {
		return nil, err
	}

	return &p, nil
}

// Found is the unified tarball of one image version, or the metadata tarball (Item)
// and squashfs (Rootfs) of a split one.
type Found struct {
	Product, Version string
	Item             Item
	Rootfs           *Item // a split image's squashfs; nil for a unified image
	Fingerprint      string
	Properties       map[string]string
}

// Size is the image's size: both files of a split image.
func (f *Found) Size() int64 {
	if f.Rootfs != nil {
		return f.Item.Size + f.Rootfs.Size
	}

	return f.Item.Size
}

// Find returns the newest unified image whose product has alias (an alias of the
// product, or ALIAS/ARCH, for a product of architecture arch when arch is not empty),
// or whose fingerprint (the tarball's sha256) is fp or starts with it (unique prefix).
func (p *Products) Find(alias, fp string, archs ...string) (*Found, error) {
	var matches []Found
	for pk, prod := range p.Products {
		if alias != "" && !prod.hasAlias(alias, archs) {
			continue
		}

		for vk, v := range prod.Versions {
			f, ok := v.image()
			if !ok {
				continue
			}

			if fp != "" && !strings.HasPrefix(f.Fingerprint, fp) {
				continue
			}

			f.Product, f.Version, f.Properties = pk, vk, prod.properties(vk)
			matches = append(matches, f)
		}
	}

	if len(matches) == 0 {
		return nil, ErrNotFound
	}

	if alias == "" {
		first := matches[0].Fingerprint
		for _, m := range matches[1:] {
			if m.Fingerprint != first {
				return nil, fmt.Errorf("fingerprint prefix %q is ambiguous", fp)
			}
		}
	}

	// The newest version (names start with the date); ties in product name order.
	sort.Slice(matches, func(i, j int) bool {
		if matches[i].Version != matches[j].Version {
			return matches[i].Version > matches[j].Version
		}

		return matches[i].Product < matches[j].Product
	})

	m := matches[0]
	for _, it := range []*Item{&m.Item, m.Rootfs} {
		if it == nil {
			continue
		}

		err := CheckPath(it.Path)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", m.Fingerprint, err)
		}

		if it.Size < 0 {
			return nil, fmt.Errorf("image %s has a negative size", m.Fingerprint)
		}
	}

	return &m, nil
}

// hasAlias is whether the product answers to alias: one of its comma-separated
// aliases (for a product of one of archs, when archs are given), or ALIAS/ARCH.
func (p Product) hasAlias(alias string, archs []string) bool {
	archOK := len(archs) == 0
	for _, a := range archs {
		if a == p.Architecture {
			archOK = true
		}
	}

	for _, a := range strings.Split(p.Aliases, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}

		if (a == alias && archOK) || a+"/"+p.Architecture == alias {
			return true
		}
	}

	return false
}

// image is the version's image: its unified tarball, else its split metadata tarball and
// squashfs (as LXD's client, which prefers the squashfs to root.tar.xz, which Berth does
// not take), with well-formed hashes.
func (v Version) image() (Found, bool) {
	it, ok := v.combined()
	if ok {
		return Found{Item: it, Fingerprint: it.SHA256}, true
	}

	meta, ok := v.item(func(it Item) bool {
		return (it.Ftype == FtypeSplitMeta || it.Ftype == FtypeSplitMetaIncus) && isSHA256(it.CombinedSquashfsSHA256)
	})
	if !ok {
		return Found{}, false
	}

	rootfs, ok := v.item(func(it Item) bool { return it.Ftype == FtypeSquashfs })
	if !ok {
		return Found{}, false
	}

	return Found{Item: meta, Rootfs: &rootfs, Fingerprint: meta.CombinedSquashfsSHA256}, true
}

// item is the first item, in key order, that ok accepts.
func (v Version) item(ok func(Item) bool) (Item, bool) {
	keys := make([]string, 0, len(v.Items))
	for k := range v.Items {
		keys = append(keys, k)
	}

	sort.Strings(keys)
	for _, k := range keys {
		if ok(v.Items[k]) {
			return v.Items[k], true
		}
	}

	return Item{}, false
}

// combined is the version's unified tarball item, with a well-formed hash.
func (v Version) combined() (Item, bool) {
	for _, ft := range []string{FtypeLXD, FtypeIncus} {
		keys := make([]string, 0, len(v.Items))
		for k := range v.Items {
			keys = append(keys, k)
		}

		sort.Strings(keys)
		for _, k := range keys {
			it := v.Items[k]
			if it.Ftype == ft && isSHA256(it.SHA256) {
				return it, true
			}
		}
	}

	return Item{}, false
}

// properties are the image properties LXD's client derives from a product.
func (p Product) properties(version string) map[string]string {
	props := map[string]string{}
	for k, v := range map[string]string{"os": p.OS, "release": p.Release, "architecture": p.Architecture, "variant": p.Variant, "serial": version} {
		if v != "" && len(v) <= 256 {
			props[k] = v
		}
	}

	return props
}
