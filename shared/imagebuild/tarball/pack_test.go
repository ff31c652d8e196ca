package tarball

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/fstree"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPackHostileTree packs a tree holding what a container's root can make: a 2 TiB
// sparse file, a FIFO nobody writes to, a socket, hard links and a symlink out of the
// tree. It must finish at once, record the FIFO without opening it, leave the socket out,
// keep the links, and write the sparse file as a PAX sparse entry both Go and GNU tar read.
func TestPackHostileTree(t *testing.T) {
	dir := t.TempDir()
	root, meta := filepath.Join(dir, "rootfs"), filepath.Join(dir, "meta")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.MkdirAll(meta, 0o755))
	must(t, os.WriteFile(filepath.Join(meta, "metadata.yaml"), []byte("architecture: x86_64\n"), 0o644))

	f, err := os.Create(filepath.Join(root, "big"))
	must(t, err)
	_, err = f.WriteAt([]byte("needle"), 1<<40)
	must(t, err)
	must(t, f.Truncate(2<<40))
	must(t, f.Close())
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	l, err := net.Listen("unix", filepath.Join(root, "sock"))
	must(t, err)
	defer l.Close()
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("shared"), 0o644))
	for _, n := range []string{"l1", "l2"} {
		must(t, os.Link(filepath.Join(root, "f"), filepath.Join(root, n)))
	}

	must(t, os.Symlink("/etc", filepath.Join(root, "etc")))

	var buf bytes.Buffer
	p := &fstree.Progress{}
	start := time.Now()
	must(t, PackWith(fstree.WithProgress(context.Background(), p), &buf, root, meta, Options{}))
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("packing took %v", d)
	}

	// The data counted is the block holding the needle, not the 2 TiB.
	if files, bytes := p.Counts(); files < 7 || bytes > 64<<10 {
		t.Fatalf("progress: %d files, %d bytes", files, bytes)
	}

	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		must(t, err)
		got[hdr.Name] = hdr
	}

	big := got["rootfs/big"]
	if big == nil || big.Size != 2<<40 || big.PAXRecords["GNU.sparse.major"] != "1" {
		t.Fatalf("big: %+v", big)
	}

	if h := got["rootfs/fifo"]; h == nil || h.Typeflag != tar.TypeFifo {
		t.Fatalf("fifo: %+v", h)
	}

	if got["rootfs/sock"] != nil {
		t.Fatal("a socket was archived")
	}

	if h := got["rootfs/l2"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "rootfs/f" {
		t.Fatalf("l2: %+v", h)
	}

	if h := got["rootfs/etc"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc" {
		t.Fatalf("etc: %+v", h)
	}

	arc := filepath.Join(dir, "a.tar")
	must(t, os.WriteFile(arc, buf.Bytes(), 0o600))
	out, err := exec.Command("tar", "-tvf", arc).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2199023255552") {
		t.Fatalf("GNU tar: %v\n%s", err, out)
	}
}

func TestPackCancelled(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "metadata.yaml"), nil, 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := PackWith(ctx, io.Discard, dir, dir, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("pack with a cancelled context: %v", err)
	}
}
