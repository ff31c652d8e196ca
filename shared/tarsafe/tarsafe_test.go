package tarsafe

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for name, want := range map[string][]string{
		"":                  nil,
		".":                 nil,
		"./":                nil,
		"rootfs":            {"rootfs"},
		"./rootfs/etc/":     {"rootfs", "etc"},
		"rootfs//etc/./x":   {"rootfs", "etc", "x"},
		"a/...":             {"a", "..."},
		"a/..b/c":           {"a", "..b", "c"},
		"metadata.yaml":     {"metadata.yaml"},
		"backup/index.yaml": {"backup", "index.yaml"},
		// Absolute names lose their leading "/", as with GNU tar and LXD.
		"/":                   nil,
		"//":                  nil,
		"/rootfs/etc/inittab": {"rootfs", "etc", "inittab"},
		"//x":                 {"x"},
		"/./metadata.yaml":    {"metadata.yaml"},
	} {
		got, err := Split(name)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, %v; want %q", name, got, err, want)
		}
	}

	for _, name := range []string{"..", "../x", "a/../../x", "a/..", "./..", "a/b\x00c", "/..", "/../etc/passwd", "//rootfs/../../x", "/a\x00"} {
		_, err := Split(name)
		if !errors.Is(err, ErrUnsafe) {
			t.Errorf("Split(%q): err = %v, want ErrUnsafe", name, err)
		}
	}
}

// FuzzSplit checks the promise of Split on any name: what it accepts, joined below a
// root, stays at or below that root, and has no component that could climb out.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", ".", "rootfs/etc/passwd", "./a//b/", "../x", "/abs", "a/../b", "a/..b", "\x00", "a/./.../b", "/rootfs/etc/inittab", "/../x", "///"} {
		f.Add(s)
	}

	const root = "/root-of-unpack"

	f.Fuzz(func(t *testing.T, name string) {
		if len(name) > 1<<16 {
			return // tar names are short; keep each run fast
		}

		comps, err := Split(name)
		if err != nil {
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Split(%q): error %v does not wrap ErrUnsafe", name, err)
			}

			if strings.Contains(err.Error(), "\n") && !strings.Contains(name, "\n") {
				t.Fatalf("Split(%q): multi-line error %q", name, err)
			}

			return
		}

		for _, c := range comps {
			if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\x00") {
				t.Fatalf("Split(%q) = %q: bad component %q", name, comps, c)
			}
		}

		joined := filepath.Join(append([]string{root}, comps...)...)
		if joined != root && !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("Split(%q) = %q joins to %q, outside %q", name, comps, joined, root)
		}

		// Idempotent: the joined form splits to the same components.
		again, err := Split(strings.Join(comps, "/"))
		if err != nil || !slices.Equal(again, comps) {
			t.Fatalf("Split(Join(%q)) = %q, %v", comps, again, err)
		}
	})
}
