package images

import (
	"strings"
	"testing"
)

func TestParseMetadata(t *testing.T) {
	meta, err := ParseMetadata([]byte(goodMetadata))
	if err != nil {
		t.Fatal(err)
	}

	if meta.Architecture != "x86_64" {
		t.Errorf("architecture = %q, want x86_64", meta.Architecture)
	}

	if meta.CreationDate != 1700000000 || meta.Properties["os"] != "debian" {
		t.Errorf("metadata = %+v", meta)
	}

	tpl := meta.Templates["/etc/hostname"]
	if tpl == nil || tpl.Template != "hostname.tpl" || strings.Join(tpl.When, ",") != "create,copy" {
		t.Errorf("template = %+v", tpl)
	}
}

func TestParseMetadataErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"bad yaml":          {"architecture: [x86_64\n", "parsing metadata.yaml"},
		"no architecture":   {"creation_date: 1\n", "architecture is missing"},
		"unknown arch":      {"architecture: pdp11\n", "unknown architecture"},
		"template subdir":   {"architecture: x86_64\ntemplates:\n  /etc/x:\n    template: ../x.tpl\n", "plain file name"},
		"relative target":   {"architecture: x86_64\ntemplates:\n  etc/x:\n    template: x.tpl\n", "not an absolute"},
		"root target":       {"architecture: x86_64\ntemplates:\n  /:\n    template: x.tpl\n", "not an absolute"},
		"empty template":    {"architecture: x86_64\ntemplates:\n  /etc/x:\n", "is empty"},
		"no template name":  {"architecture: x86_64\ntemplates:\n  /etc/x:\n    when: [start]\n", "plain file name"},
		"not a mapping doc": {"- a\n- b\n", "parsing metadata.yaml"},
	} {
		_, err := ParseMetadata([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestArchitectureName(t *testing.T) {
	for in, want := range map[string]string{"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "armhf": "armv7l", "i386": "i686", "ppc64el": "ppc64le"} {
		got, err := ArchitectureName(in)
		if err != nil || got != want {
			t.Errorf("ArchitectureName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestReadMetadata(t *testing.T) {
	p := writeTemp(t, makeTar(t, "gzip", file("./metadata.yaml", goodMetadata), dir("./rootfs/"), file("./templates/hostname.tpl", "x")))

	meta, hasRootfs, err := ReadMetadata(p)
	if err != nil {
		t.Fatal(err)
	}

	if !hasRootfs || meta.Architecture != "x86_64" {
		t.Fatalf("hasRootfs = %v, meta = %+v", hasRootfs, meta)
	}

	p = writeTemp(t, makeTar(t, "none", file("templates/hostname.tpl", "x"), file("metadata.yaml", goodMetadata)))

	_, hasRootfs, err = ReadMetadata(p)
	if err != nil || hasRootfs {
		t.Fatalf("metadata-only tarball: hasRootfs = %v, err = %v", hasRootfs, err)
	}

	p = writeTemp(t, makeTar(t, "gzip", dir("rootfs/")))

	_, _, err = ReadMetadata(p)
	if err == nil || !strings.Contains(err.Error(), "no metadata.yaml") {
		t.Fatalf("missing metadata: err = %v", err)
	}

	p = writeTemp(t, makeTar(t, "gzip", file("metadata.yaml", "properties: {}\n"), dir("rootfs/")))

	_, _, err = ReadMetadata(p)
	if err == nil || !strings.Contains(err.Error(), "architecture is missing") {
		t.Fatalf("missing architecture: err = %v", err)
	}
}
