// Package streams writes and reads the simplestreams image index LXD's and Incus'
// image servers publish (streams/v1/index.json and the products file it names):
// `berth image publish-streams` writes a tree of unified ("combined") container images,
// berthd reads one to download an image, unified or split (metadata + squashfs). The documents are untrusted input on
// the reading side: sizes, paths and hashes are checked before anything is used.
package streams

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Paths and names of the tree, as LXD's image servers lay it out.
const (
	IndexPath    = "streams/v1/index.json"
	ProductsPath = "streams/v1/images.json"

	// FtypeLXD and FtypeIncus name the unified tarball item for LXD 5.0 and Incus
	// clients; each ignores the other's.
	FtypeLXD   = "lxd_combined.tar.gz"
	FtypeIncus = "incus_combined.tar.gz"

	// MaxIndexSize and MaxProductsSize cap the documents a reader accepts.
	MaxIndexSize    = 1 << 20
	MaxProductsSize = 32 << 20

	// maxPathLen caps a path named in a document.
	maxPathLen = 1024
)

// Index is streams/v1/index.json.
type Index struct {
	Format  string                `json:"format"`
	Updated string                `json:"updated,omitempty"`
	Index   map[string]IndexEntry `json:"index"`
}

// IndexEntry is one products file of the index.
type IndexEntry struct {
	DataType string   `json:"datatype"`
	Format   string   `json:"format"`
	Path     string   `json:"path"`
	Updated  string   `json:"updated,omitempty"`
	Products []string `json:"products"`
}

// Products is a products file (streams/v1/images.json).
type Products struct {
	ContentID string             `json:"content_id"`
	DataType  string             `json:"datatype"`
	Format    string             `json:"format"`
	Updated   string             `json:"updated,omitempty"`
	Products  map[string]Product `json:"products"`
}

// Product is one image line (os, release, variant, architecture) and its versions.
type Product struct {
	Aliases      string             `json:"aliases"`
	Architecture string             `json:"arch"`
	OS           string             `json:"os"`
	Release      string             `json:"release"`
	ReleaseTitle string             `json:"release_title"`
	Variant      string             `json:"variant,omitempty"`
	Versions     map[string]Version `json:"versions"`
}

// Version is one build of a product; its name starts with the date (YYYYMMDD), which
// LXD's client reads as the creation date.
type Version struct {
	Items map[string]Item `json:"items"`
}

// Item is one file of a version.
type Item struct {
	Ftype  string `json:"ftype"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// CombinedSquashfsSHA256, on a split image's metadata item (FtypeSplitMeta), is the
	// image's fingerprint: the sha256 of the metadata tarball followed by the squashfs.
	CombinedSquashfsSHA256 string `json:"combined_squashfs_sha256,omitempty"`
}

// The items of a split image (LXD's images servers): the metadata tarball, whose item
// carries the fingerprint, and the squashfs rootfs.
const (
	FtypeSplitMeta      = "lxd.tar.xz"
	FtypeSplitMetaIncus = "incus.tar.xz"
	FtypeSquashfs       = "squashfs"
)

// isSHA256 says whether s is a SHA-256 digest in lower-case hex, as the documents give
// them. (A loop, not a regexp: every command of the CLI would compile the regexp at its
// start, and this package is linked into it.)
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}

	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}

	return true
}

// CheckPath refuses a path a document names that is not a plain relative path inside
// the tree: absolute, with "..", a scheme, a query, backslashes or control bytes.
func CheckPath(p string) error {
	if p == "" || len(p) > maxPathLen {
		return fmt.Errorf("path of %d bytes", len(p))
	}

	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' || r == '?' || r == '#' || r == '%' || r == ':' {
			return fmt.Errorf("path %q has a forbidden character", p)
		}
	}

	if strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return fmt.Errorf("path %q is not a clean relative path", p)
	}

	for _, el := range strings.Split(p, "/") {
		if el == ".." || el == "." {
			return fmt.Errorf("path %q leaves the tree", p)
		}
	}

	return nil
}

// ErrNotFound is an alias or fingerprint the products file does not have.
var ErrNotFound = errors.New("image not found")
