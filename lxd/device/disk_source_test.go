package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/testutil"
	"golang.org/x/sys/unix"
)

func TestDiskSourceValidation(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	share := filepath.Join(dir, "share")
	for _, d := range []string{state, share, filepath.Join(share, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.Symlink(share, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	daemonDir.Store(&state)
	t.Cleanup(func() { daemonDir.Store(nil) })

	disk := func(kv ...string) map[string]string {
		conf := map[string]string{"type": "disk", "path": "/mnt/x"}
		for i := 0; i+1 < len(kv); i += 2 {
			conf[kv[i]] = kv[i+1]
		}

		return conf
	}

	for _, ok := range []map[string]string{
		disk("source", share),
		disk("source", share+"/"),
		disk("source", filepath.Join(share, "sub"), "readonly", "true", "shift", "true"),
		disk("source", filepath.Join(dir, "missing"), "required", "false"),
		{"type": "disk", "path": "/", "pool": "default"},
	} {
		err := diskDevice{}.validate(ok)
		if err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}

	for _, c := range []struct {
		conf map[string]string
		want string
	}{
		{disk("source", "/"), "cannot be /"},
		{disk("source", state), "state directory"},
		{disk("source", filepath.Join(state, "x")), "state directory"},
		{disk("source", dir), "state directory"}, // contains it
		{disk("source", "relative"), "absolute"},
		{disk("source", ""), "absolute"},
		{disk("source", filepath.Join(dir, "missing")), "no such file"},
		{disk("source", filepath.Join(dir, "link")), "symbolic link"},
		{disk("source", filepath.Join(dir, "link", "sub")), "symbolic link"},
		{disk("source", "/proc/sys"), "is on proc"},
		{disk("source", "/sys/kernel"), "is on sysfs"},
		{disk("source", share, "shift", "maybe"), "shift"},
		{disk("source", share, "propagation", "shared"), "unknown key"},
		{disk("source", share, "path", "relative"), "absolute"},
	} {
		err := diskDevice{}.validate(c.conf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want an error with %q, got %v", c.conf, c.want, err)
		}
	}
}

// TestDiskTreeAttrs: the clone a disk gets is nosuid and nodev everywhere, read-only when
// asked, and is the object the source named (not a symlink's target).
func TestDiskTreeAttrs(t *testing.T) {
	testutil.RequireRoot(t, "open_tree")

	share := t.TempDir()
	tree, err := diskDevice{}.tree(map[string]string{"source": share, "readonly": "true"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	defer unix.Close(tree)

	var st unix.Statfs_t
	if err := unix.Fstatfs(tree, &st); err != nil {
		t.Fatal(err)
	}

	want := int64(unix.ST_NOSUID | unix.ST_NODEV | unix.ST_RDONLY)
	if st.Flags&want != want {
		t.Errorf("clone flags %#x lack nosuid|nodev|rdonly", st.Flags)
	}

	var a, b unix.Stat_t
	_ = unix.Fstat(tree, &a)
	_ = unix.Stat(share, &b)
	if a.Ino != b.Ino || a.Dev != b.Dev {
		t.Error("the clone is not the source")
	}
}
