package setup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMkpathStaysInRoot checks that symlinks in an image, absolute,
// relative or dangling, never lead mkpath out of the root.
func TestMkpathStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	rootDir := t.TempDir()

	links := map[string]string{
		"abs":    outside + "/abs-target",      // absolute, dangling
		"rel":    "../../../../" + outside[1:], // climbs past the root
		"loop":   "loop",
		"exists": "/etc",
	}

	err := os.Mkdir(filepath.Join(rootDir, "etc"), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	for name, target := range links {
		err = os.Symlink(target, filepath.Join(rootDir, name))
		if err != nil {
			t.Fatal(err)
		}
	}

	r, err := openRoot(rootDir)
	if err != nil {
		t.Fatal(err)
	}

	defer r.close()

	for _, c := range []struct {
		rel  string
		k    kind
		want string // path under rootDir that must now exist
	}{
		{"/abs/sub", kindDir, outside + "/abs-target/sub"},
		{"rel/file", kindFile, outside + "/file"},
		{"/exists/x", kindDir, "/etc/x"},
		{"/plain/a/b", kindFile, "/plain/a/b"},
	} {
		fd, err := r.mkpath(c.rel, c.k, 0o755)
		if err != nil {
			t.Errorf("mkpath(%q): %v", c.rel, err)
			continue
		}

		_ = unix.Close(fd)

		_, err = os.Stat(filepath.Join(rootDir, c.want))
		if err != nil {
			t.Errorf("mkpath(%q) did not create %s inside the root: %v", c.rel, c.want, err)
		}
	}

	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("mkpath wrote outside the root: %v", entries)
	}

	_, err = r.mkpath("/loop/x", kindDir, 0o755)
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("mkpath through a symlink loop = %v, want ELOOP", err)
	}
}
