package instance

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestValidTemplateName(t *testing.T) {
	for _, ok := range []string{"hostname.tpl", "a", "x-y_z.1"} {
		if err := validTemplateName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}

	for _, bad := range []string{"", ".", "..", ".hidden", "a/b", "../x", "/etc/x", "a\x00b", strings.Repeat("x", 256)} {
		if err := validTemplateName(bad); api.StatusCodeOf(err) != http.StatusBadRequest {
			t.Errorf("%q: err = %v, want 400", bad, err)
		}
	}
}

// TestTemplateFilesConfined: reads take regular files only (a symlink to a host file, a
// FIFO that would block are refused), writes replace a symlink instead of following it,
// and sizes are capped with nothing written.
func TestTemplateFilesConfined(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	must(t, os.WriteFile(secret, []byte("host secret"), 0o600))
	must(t, os.Symlink(secret, filepath.Join(dir, "link.tpl")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.tpl"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "ok.tpl"), []byte("{{ container.name }}"), 0o644))

	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()

	for _, f := range []string{"link.tpl", "fifo.tpl"} {
		_, err := readRegular(root, f, MaxTemplateSize)
		if api.StatusCodeOf(err) != http.StatusBadRequest {
			t.Errorf("reading %s: %v, want 400", f, err)
		}
	}

	data, err := readRegular(root, "ok.tpl", MaxTemplateSize)
	if err != nil || string(data) != "{{ container.name }}" {
		t.Errorf("ok.tpl = %q, %v", data, err)
	}

	_, err = readRegular(root, "ok.tpl", 5)
	if api.StatusCodeOf(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("over the cap: %v", err)
	}

	must(t, writeReplace(root, "link.tpl", strings.NewReader("new"), MaxTemplateSize))
	if got, _ := os.ReadFile(secret); string(got) != "host secret" {
		t.Fatalf("write followed a symlink: host file is %q", got)
	}

	if fi, err := os.Lstat(filepath.Join(dir, "link.tpl")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link.tpl not replaced by a file: %v, %v", fi, err)
	}

	err = writeReplace(root, "big.tpl", strings.NewReader(strings.Repeat("x", 11)), 10)
	if api.StatusCodeOf(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized write: %v", err)
	}

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == "big.tpl" || strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongTemplateNameWritable: a name validTemplateName accepts can be written (the
// temporary file writeReplace makes is longer than the name; at 255 bytes it failed
// with ENAMETOOLONG, a 500, instead of a 400 naming the problem).
func TestLongTemplateNameWritable(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	must(t, err)
	defer root.Close()

	for n := 240; n <= 256; n++ {
		name := strings.Repeat("x", n)
		if validTemplateName(name) != nil {
			continue
		}

		err := writeReplace(root, name, strings.NewReader("t"), MaxTemplateSize)
		if err != nil {
			t.Errorf("%d-byte name accepted but not writable: %v", n, err)
		}
	}
}
