package streams

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	fpA = strings.Repeat("a", 64)
	fpB = strings.Repeat("b", 64)
)

func TestRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	imgs := []Image{
		{Fingerprint: fpA, Size: 10, Path: "images/a.tar.gz", Created: t0, Aliases: []string{"debian/12", "bad,alias"}, OS: "Debian", Release: "bookworm", Architecture: "x86_64"},
		{Fingerprint: fpB, Size: 20, Path: "images/b.tar.gz", Created: t0.Add(time.Hour), Aliases: []string{"newest"}, OS: "Debian", Release: "bookworm", Architecture: "x86_64"},
	}

	index, products, err := Build(imgs, t0)
	if err != nil {
		t.Fatal(err)
	}

	path, err := ParseIndex(index)
	if err != nil || path != ProductsPath {
		t.Fatalf("ParseIndex: %q %v", path, err)
	}

	p, err := ParseProducts(products)
	if err != nil {
		t.Fatal(err)
	}

	prod, ok := p.Products["Debian:bookworm:default:x86_64"]
	if !ok || prod.Aliases != "debian/12,newest" || len(prod.Versions) != 2 {
		t.Fatalf("product: %+v", p.Products)
	}

	for name, v := range prod.Versions {
		if _, err := time.Parse("20060102", name[:8]); err != nil {
			t.Errorf("version %q does not start with a date", name)
		}

		if v.Items["lxd_combined.tar.gz"].Ftype != FtypeLXD || v.Items["incus_combined.tar.gz"].Ftype != FtypeIncus {
			t.Errorf("items: %+v", v.Items)
		}
	}

	// An alias resolves to the product's newest version, by fingerprint to the exact one.
	f, err := p.Find("debian/12", "", "x86_64")
	if err != nil || f.Item.SHA256 != fpB || f.Item.Size != 20 || f.Item.Path != "images/b.tar.gz" {
		t.Errorf("Find alias: %+v %v", f, err)
	}

	f, err = p.Find("debian/12/x86_64", "")
	if err != nil || f.Item.SHA256 != fpB {
		t.Errorf("Find alias/arch: %+v %v", f, err)
	}

	f, err = p.Find("", fpA[:12])
	if err != nil || f.Item.SHA256 != fpA || f.Properties["os"] != "Debian" {
		t.Errorf("Find fingerprint: %+v %v", f, err)
	}

	for _, c := range [][3]string{{"nope", "", ""}, {"debian/12", "", "aarch64"}, {"", fpA[:10] + "cc", ""}, {"bad", "", ""}} {
		_, err = p.Find(c[0], c[1], c[2])
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Find(%q, %q, %q): %v, want not found", c[0], c[1], c[2], err)
		}
	}
}

func TestHostile(t *testing.T) {
	for name, doc := range map[string]string{
		"oversize":      `{"index":{}, "x":"` + strings.Repeat("x", MaxIndexSize) + `"}`,
		"wrong types":   `{"index":{"images":{"datatype":"image-downloads","path":42}}}`,
		"not an object": `[]`,
		"dotdot":        `{"index":{"images":{"datatype":"image-downloads","path":"../../etc/passwd"}}}`,
		"absolute":      `{"index":{"images":{"datatype":"image-downloads","path":"/etc/passwd"}}}`,
		"url":           `{"index":{"images":{"datatype":"image-downloads","path":"https://evil/x.json"}}}`,
		"none":          `{"index":{"images":{"datatype":"other","path":"x.json"}}}`,
		"trailing":      `{"index":{}} {}`,
	} {
		if p, err := ParseIndex([]byte(doc)); err == nil {
			t.Errorf("%s: ParseIndex accepted it: %q", name, p)
		}
	}

	if _, err := ParseProducts([]byte(`{"products":{"x":{"versions":{"v":{"items":{"i":{"size":"big"}}}}}}}`)); err == nil {
		t.Error("ParseProducts accepted a string size")
	}

	if _, err := ParseProducts(make([]byte, MaxProductsSize+1)); err == nil {
		t.Error("ParseProducts accepted an oversize document")
	}

	// A well-formed file whose item leaves the tree, or has a bad hash or size.
	for name, it := range map[string]Item{
		"dotdot":   {Ftype: FtypeLXD, Path: "images/../../x", SHA256: fpA, Size: 1},
		"negative": {Ftype: FtypeLXD, Path: "images/x", SHA256: fpA, Size: -1},
		"hash":     {Ftype: FtypeLXD, Path: "images/x", SHA256: "zz", Size: 1},
	} {
		p := Products{Products: map[string]Product{"p": {Aliases: "x", Architecture: "x86_64", Versions: map[string]Version{"20260101": {Items: map[string]Item{"i": it}}}}}}
		data, _ := json.Marshal(p)
		pp, err := ParseProducts(data)
		if err != nil {
			t.Fatal(err)
		}

		if f, err := pp.Find("x", ""); err == nil {
			t.Errorf("%s: Find accepted %+v", name, f)
		}
	}

	for _, p := range []string{"a/../b", "./a", "a//b", "a\\b", "a\x00", "a?b", ""} {
		if CheckPath(p) == nil {
			t.Errorf("CheckPath(%q) accepted it", p)
		}
	}
}

// A split image (LXD's image servers: lxd.tar.xz with combined_squashfs_sha256, and a
// squashfs item) is found by alias and by its combined fingerprint; without its squashfs
// item or with a malformed combined hash it is not an image; a hostile squashfs path fails.
func TestFindSplit(t *testing.T) {
	combined := strings.Repeat("c", 64)
	items := func(meta, rootfs Item) Products {
		v := Version{Items: map[string]Item{"lxd.tar.xz": meta}}
		if rootfs.Ftype != "" {
			v.Items["root.squashfs"] = rootfs
		}

		return Products{Products: map[string]Product{"p": {Aliases: "split", Architecture: "x86_64", Versions: map[string]Version{"20260101": v}}}}
	}

	meta := Item{Ftype: FtypeSplitMeta, Path: "images/m.tar.xz", SHA256: fpA, Size: 10, CombinedSquashfsSHA256: combined}
	sq := Item{Ftype: FtypeSquashfs, Path: "images/r.squashfs", SHA256: fpB, Size: 90}

	p := items(meta, sq)
	for _, q := range [][2]string{{"split", ""}, {"", combined[:12]}} {
		f, err := p.Find(q[0], q[1])
		if err != nil || f.Fingerprint != combined || f.Rootfs == nil || f.Rootfs.Path != sq.Path || f.Size() != 100 {
			t.Errorf("Find(%q, %q): %+v %v", q[0], q[1], f, err)
		}
	}

	noSq := items(meta, Item{})
	if _, err := noSq.Find("split", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("split image without its squashfs: %v", err)
	}

	badHash := meta
	badHash.CombinedSquashfsSHA256 = "zz"
	p = items(badHash, sq)
	if _, err := p.Find("split", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("malformed combined hash: %v", err)
	}

	badPath := sq
	badPath.Path = "../../etc/passwd"
	p = items(meta, badPath)
	if _, err := p.Find("split", ""); err == nil {
		t.Error("a squashfs path with .. was accepted")
	}
}

func TestIsSHA256(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	cases := map[string]bool{
		good:                       true,
		good[:63]:                  false,
		good + "0":                 false,
		strings.ToUpper(good):      false,
		good[:63] + "g":            false,
		good[:63] + "/":            false,
		"":                         false,
		good[:62] + "\u00e9":       false, // 64 bytes, not hex
		strings.Repeat("f", 64):    true,
		strings.Repeat(":", 64):    false,
		strings.Repeat("`", 64):    false,
		strings.Repeat("@", 64):    false,
		strings.Repeat("G", 64):    false,
		strings.Repeat("\x00", 64): false,
	}

	for s, want := range cases {
		if got := isSHA256(s); got != want {
			t.Errorf("isSHA256(%q) = %v, want %v", s, got, want)
		}
	}
}
