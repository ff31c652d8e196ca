package fileio

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// newRoot makes a fake container root with /etc/shadow, and hostile links in /tmp.
func newRoot(t *testing.T) (string, *Root) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc", "tmp", "home"} {
		err := os.Mkdir(filepath.Join(dir, d), 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	err := os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte("container shadow\n"), 0o640)
	if err != nil {
		t.Fatal(err)
	}

	for link, target := range map[string]string{"tmp/s": "/etc/shadow", "tmp/d": "/", "tmp/up": "../../../../..", "tmp/rel": "../etc/shadow"} {
		err := os.Symlink(target, filepath.Join(dir, link))
		if err != nil {
			t.Fatal(err)
		}
	}

	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = r.Close() })
	return dir, r
}

func readAll(t *testing.T, r *Root, p string) string {
	t.Helper()
	e, err := r.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}

	if e.File == nil {
		t.Fatalf("open %s: type %s, not a file", p, e.Type)
	}

	defer e.File.Close()
	data, err := io.ReadAll(e.File)
	if err != nil {
		t.Fatal(err)
	}

	return string(data)
}

func TestPathsStayInsideRoot(t *testing.T) {
	dir, r := newRoot(t)
	host := Owner{UID: os.Getuid(), GID: os.Getgid()}

	// Symlinks in parent positions resolve inside the root.
	for _, p := range []string{"/tmp/d/etc/shadow", "/tmp/up/etc/shadow", "/../../etc/shadow", "tmp/d/../../etc/shadow"} {
		got := readAll(t, r, p)
		if got != "container shadow\n" {
			t.Errorf("%s read %q, want the container's shadow", p, got)
		}
	}

	// The last component is not followed; the target is reported inside the container.
	e, err := r.Open("/tmp/s")
	if err != nil || e.Type != TypeSymlink || e.Target != "/etc/shadow" {
		t.Fatalf("open /tmp/s = %+v, %v; want a symlink to /etc/shadow", e, err)
	}

	e, err = r.Open("/tmp/rel")
	if err != nil || AbsTarget("/tmp/rel", e.Target) != "/etc/shadow" {
		t.Fatalf("relative link target = %q (%v)", e.Target, err)
	}

	// Writes through a link to "/" land in the root, not on the host.
	_, err = r.WriteFile("/tmp/d/pwned", strings.NewReader("x"), false, 0o644, host)
	if err != nil {
		t.Fatal(err)
	}

	_, err = os.Stat(filepath.Join(dir, "pwned"))
	if err != nil {
		t.Fatalf("write through /tmp/d did not land in the root: %v", err)
	}

	_, err = os.Stat("/pwned")
	if err == nil {
		t.Fatal("write through /tmp/d reached the host's /")
	}

	// Writing to a symlink itself is refused rather than followed.
	_, err = r.WriteFile("/tmp/s", strings.NewReader("x"), false, 0o644, host)
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("write to a symlink: %v, want 400", err)
	}

	if readAll(t, r, "/etc/shadow") != "container shadow\n" {
		t.Fatal("write to the symlink changed its target")
	}

}

func TestWriteModesAndOwners(t *testing.T) {
	dir, r := newRoot(t)
	owner := Owner{UID: 1000123, GID: 1000124}

	created, err := r.WriteFile("/home/f", strings.NewReader("one\n"), false, 0o4755, owner)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}

	st, err := os.Stat(filepath.Join(dir, "home/f"))
	if err != nil {
		t.Fatal(err)
	}

	if st.Mode()&os.ModePerm != 0o755 || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("mode = %v, want setuid 0755", st.Mode())
	}

	e, _ := r.Open("/home/f")
	e.File.Close()
	if e.UID != 1000123 || e.GID != 1000124 {
		t.Errorf("owner = %d:%d", e.UID, e.GID)
	}

	created, err = r.WriteFile("/home/f", strings.NewReader("two\n"), true, 0o600, Owner{})
	if err != nil || created {
		t.Fatalf("append: %v %v", created, err)
	}

	if got := readAll(t, r, "/home/f"); got != "one\ntwo\n" {
		t.Errorf("after append: %q", got)
	}

	_, err = r.WriteFile("/home/f", bytes.NewReader([]byte("3")), false, 0o600, Owner{})
	if err != nil || readAll(t, r, "/home/f") != "3" {
		t.Errorf("overwrite: %v", err)
	}

	// Existing files keep mode and owner.
	e, _ = r.Open("/home/f")
	e.File.Close()
	if e.Mode != 0o4755 || e.UID != 1000123 {
		t.Errorf("overwrite changed mode/owner: %o %d", e.Mode, e.UID)
	}

	err = r.Mkdir("/home/d", 0o750, owner)
	if err != nil {
		t.Fatal(err)
	}

	err = r.Mkdir("/home/d", 0o700, Owner{})
	if err != nil {
		t.Fatalf("mkdir of an existing directory: %v", err)
	}

	err = r.Symlink("/etc/shadow", "/home/d/l", owner)
	if err != nil {
		t.Fatal(err)
	}

	e, err = r.Open("/home")
	if err != nil || e.Type != TypeDirectory || strings.Join(e.Names, ",") != "d,f" {
		t.Fatalf("listing = %+v, %v", e, err)
	}

	err = r.Remove("/home/d")
	if err != nil {
		t.Fatal(err)
	}

	_, err = r.Open("/home/d")
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("after remove: %v, want 404", err)
	}

	err = r.Remove("/")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("remove /: %v, want 400", err)
	}

	// A FIFO is never opened.
	err = syscallMkfifo(filepath.Join(dir, "tmp/fifo"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = r.Open("/tmp/fifo")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("open fifo: %v, want 400", err)
	}
}
