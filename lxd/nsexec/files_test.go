package nsexec

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/shared/api"
)

// targetRoot is the host uid of the test target's root (target()).
const targetRoot = 3_100_000

func newFileServer(t testing.TB, pid int) *FileServer {
	t.Helper()
	s, err := StartFileServer(testExe(t), pid)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { s.Close(); <-s.Done() })
	return s
}

// ownedDir is a directory the target's root owns, reachable from it.
func ownedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-files-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	err = os.Chown(dir, targetRoot, targetRoot)
	if err != nil {
		t.Fatal(err)
	}

	return dir
}

// TestFileServerIsContainerRoot: the file server may do what the container's root may (in
// a directory it owns, with its ids), and the kernel refuses it the rest, though it is
// "root": a host-root file in that directory (as a host file bound into the tree would be)
// is neither written nor read.
func TestFileServerIsContainerRoot(t *testing.T) {
	pid := target(t)
	s := newFileServer(t, pid)
	dir := ownedDir(t)

	// Its own: created with the container's ids, listed, read, removed.
	_, err := s.WriteFile(dir+"/mine", strings.NewReader("mine\n"), false, 0o640, fileio.Owner{UID: 1000, GID: 1001})
	if err != nil {
		t.Fatal(err)
	}

	var st unix.Stat_t
	err = unix.Stat(dir+"/mine", &st)
	if err != nil || st.Uid != targetRoot+1000 || st.Gid != targetRoot+1001 || st.Mode&0o7777 != 0o640 {
		t.Fatalf("created file: %+v %v, want %d:%d 0640", st, err, targetRoot+1000, targetRoot+1001)
	}

	e, err := s.Open(dir + "/mine")
	if err != nil || e.UID != 1000 || e.GID != 1001 || e.File == nil {
		t.Fatalf("open: %+v %v, want the container's ids", e, err)
	}

	data, _ := io.ReadAll(e.File)
	_ = e.File.Close()
	if string(data) != "mine\n" {
		t.Fatalf("read back %q", data)
	}

	err = s.Mkdir(dir+"/d", 0o750, fileio.Owner{UID: 5, GID: 5})
	if err == nil {
		err = s.Symlink("/etc/passwd", dir+"/d/l", fileio.Owner{})
	}

	if err != nil {
		t.Fatal(err)
	}

	e, err = s.Open(dir)
	if err != nil || e.Type != fileio.TypeDirectory || strings.Join(e.Names, ",") != "d,mine" {
		t.Fatalf("listing: %+v %v", e, err)
	}

	// Host root's file, in the container root's directory: refused by the kernel.
	hostFile := filepath.Join(dir, "host")
	err = os.WriteFile(hostFile, []byte("host\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.WriteFile(hostFile, strings.NewReader("pwned\n"), false, 0o644, fileio.Owner{})
	if !api.StatusErrorCheck(err, http.StatusForbidden) {
		t.Fatalf("write to host root's 0644 file: %v, want 403", err)
	}

	secret := filepath.Join(dir, "secret")
	err = os.WriteFile(secret, []byte("secret\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Open(secret)
	if !api.StatusErrorCheck(err, http.StatusForbidden) {
		t.Fatalf("read of host root's 0600 file: %v, want 403", err)
	}

	if data, _ := os.ReadFile(hostFile); string(data) != "host\n" {
		t.Fatalf("host file now %q", data)
	}

	// A FIFO is neither opened nor waited on.
	err = unix.Mkfifo(dir+"/fifo", 0o666)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = s.Open(dir + "/fifo")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) || time.Since(start) > time.Second {
		t.Fatalf("open of a FIFO: %v after %s, want a prompt 400", err, time.Since(start))
	}

	err = s.Remove(dir + "/d")
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Open(dir + "/d")
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("after remove: %v, want 404", err)
	}
}

// TestFileServerEndsWithInit: the server goes with its container.
func TestFileServerEndsWithInit(t *testing.T) {
	pid := target(t)
	s := newFileServer(t, pid)

	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("file server still runs after its init was killed")
	}

	_, err := s.Open("/")
	if err == nil {
		t.Fatal("open through a gone server worked")
	}
}

// BenchmarkFileServerStart is the cost of a file server (once per container and idle
// period).
func BenchmarkFileServerStart(b *testing.B) {
	pid := target(b)
	for b.Loop() {
		s, err := StartFileServer(testExe(b), pid)
		if err != nil {
			b.Fatal(err)
		}

		s.Close()
		<-s.Done()
	}
}

// BenchmarkFileServerPushSmall is one small push through a running server.
func BenchmarkFileServerPushSmall(b *testing.B) {
	pid := target(b)
	s := newFileServer(b, pid)
	dir := ownedDir(b)
	for b.Loop() {
		_, err := s.WriteFile(dir+"/f", strings.NewReader("hello\n"), false, 0o644, fileio.Owner{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRootPushSmall is the same push done in the daemon as host root (what a stopped
// container's push still is, and what a running one's was).
func BenchmarkRootPushSmall(b *testing.B) {
	dir := ownedDir(b)
	r, err := fileio.OpenRoot("/")
	if err != nil {
		b.Fatal(err)
	}

	defer r.Close()
	for b.Loop() {
		_, err := r.WriteFile(dir+"/f", strings.NewReader("hello\n"), false, 0o644, fileio.Owner{UID: targetRoot, GID: targetRoot})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileServerPull100M streams 100 MiB out of a running server.
func BenchmarkFileServerPull100M(b *testing.B) {
	pid := target(b)
	s := newFileServer(b, pid)
	dir := ownedDir(b)
	f, err := os.Create(dir + "/big")
	if err != nil {
		b.Fatal(err)
	}

	_, _ = io.CopyN(f, zeroReader{}, 100<<20)
	_ = f.Close()
	_ = os.Chmod(dir+"/big", 0o644)

	b.SetBytes(100 << 20)
	for b.Loop() {
		e, err := s.Open(dir + "/big")
		if err != nil {
			b.Fatal(err)
		}

		n, err := io.Copy(io.Discard, e.File)
		_ = e.File.Close()
		if err != nil || n != 100<<20 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkFileServerPush100M streams 100 MiB into a running server.
func BenchmarkFileServerPush100M(b *testing.B) {
	pid := target(b)
	s := newFileServer(b, pid)
	dir := ownedDir(b)

	b.SetBytes(100 << 20)
	for b.Loop() {
		_, err := s.WriteFile(dir+"/big", io.LimitReader(zeroReader{}, 100<<20), false, 0o644, fileio.Owner{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
