package fileio

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// TestKernelFilesystemsRefused writes through a root on procfs: whoever we are, nothing is
// written, created or removed there, and the error names the filesystem. The target,
// /proc/self/comm, would only rename this test's thread.
func TestKernelFilesystemsRefused(t *testing.T) {
	r, err := OpenRoot("/proc")
	if err != nil {
		t.Fatal(err)
	}

	defer r.Close()

	before, _ := os.ReadFile("/proc/self/comm")

	_, err = r.WriteFile("/self/comm", strings.NewReader("pwned"), false, 0o644, Owner{})
	if !api.StatusErrorCheck(err, http.StatusForbidden) || !strings.Contains(err.Error(), "proc") {
		t.Fatalf("write to /proc/self/comm: %v, want a 403 naming proc", err)
	}

	after, _ := os.ReadFile("/proc/self/comm")
	if string(after) != string(before) {
		t.Fatalf("comm changed from %q to %q", before, after)
	}

	for name, op := range map[string]func() error{
		"mkdir":   func() error { return r.Mkdir("/self/x", 0o755, Owner{}) },
		"symlink": func() error { return r.Symlink("/", "/self/x", Owner{}) },
		"remove":  func() error { return r.Remove("/self/comm") },
	} {
		err := op()
		if !api.StatusErrorCheck(err, http.StatusForbidden) {
			t.Errorf("%s in /proc: %v, want 403", name, err)
		}
	}

	// Reading is the caller's business (the file server reads as the container's root).
	data, err := r.ReadFile("/self/comm", 4096)
	if err != nil || len(data) == 0 {
		t.Fatalf("reading /proc/self/comm: %q %v", data, err)
	}
}

// TestReadFileBounds reads small files whole and refuses FIFOs, directories, symlinks and
// files past the cap, without reading a sparse file's holes.
func TestReadFileBounds(t *testing.T) {
	dir, r := newRoot(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(os.WriteFile(filepath.Join(dir, "etc/small"), []byte("nameserver 10.0.0.1\n"), 0o644))
	must(unix.Mkfifo(filepath.Join(dir, "etc/fifo"), 0o644))
	f, err := os.Create(filepath.Join(dir, "etc/sparse"))
	must(err)
	must(f.Truncate(64 << 30))
	must(f.Close())

	data, err := r.ReadFile("/etc/small", 1<<20)
	if err != nil || string(data) != "nameserver 10.0.0.1\n" {
		t.Fatalf("small: %q %v", data, err)
	}

	for p, status := range map[string]int{
		"/etc/fifo":   http.StatusBadRequest,
		"/etc":        http.StatusBadRequest,
		"/tmp/s":      http.StatusBadRequest,
		"/etc/sparse": http.StatusRequestEntityTooLarge,
		"/etc/none":   http.StatusNotFound,
	} {
		_, err := r.ReadFile(p, 1<<20)
		if !api.StatusErrorCheck(err, status) {
			t.Errorf("ReadFile %s: %v, want %d", p, err, status)
		}
	}
}
