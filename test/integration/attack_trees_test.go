package integration

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// What root inside a container builds for the attack: a 2 TiB sparse file with one block
// of data at 1 TiB, a FIFO (a reader that opens it blocks forever), a listening unix
// socket, a chain of 5000 nested directories (paths far beyond PATH_MAX) and one file
// with 10000 hard links.
const hostileTree = `set -e
truncate -s 2T /big
printf 'needle' | dd of=/big bs=1 seek=1099511627776 conv=notrunc status=none
mkfifo /fifo
perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => IO::Socket::UNIX::SOCK_STREAM(), Local => "/sock", Listen => 1) or die $!'
perl -e 'mkdir "/deep" or die; chdir "/deep" or die; for (1..5000) { mkdir "d" or die $!; chdir "d" or die $! } open(F, ">bottom") or die; print F "bottom"'
perl -e 'mkdir "/links"; open(F, ">/links/f") or die; print F "shared"; close F; for (1..10000) { link("/links/f", "/links/l$_") or die $! }'
echo marker > /root/marker
sync
`

const (
	twoTiB = int64(2) << 40
	// treeOpTimeout is far above what the operations need (seconds for snapshot and copy;
	// publish and export gzip the whole Debian tree, tens of seconds on a loaded machine)
	// and far below what the old code needs to read or write 2 TiB of zeros. guardDisk
	// stops the old code's copies sooner.
	treeOpTimeout = 3 * time.Minute
	// maxDiskGrowth is how much free space an operation may use: the copies of the
	// Debian tree's changes and of the hostile tree are a few megabytes.
	maxDiskGrowth = int64(2) << 30
)

// TestAttackTrees runs snapshot, copy, publish and export of a container whose root built
// a hostile tree. Each must complete in seconds, keep the 2 TiB file sparse (megabytes on
// the host), record the FIFO and socket without blocking on them, and keep the deep tree
// and the hard links. Then long operations are cancelled through DELETE /1.0/operations
// and by deleting the instance: they end Cancelled and leave no files or mounts behind.
func TestAttackTrees(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	// A daemon stuck in a walk (the old code) cannot delete its instances: kill it, and
	// the restart cleans up.
	t.Cleanup(func() {
		if t.Failed() && d.cmd != nil {
			d.kill(syscall.SIGKILL)
			d.start()
		}
	})

	d.berth("launch", "debian/12", "t1")
	waitUp(t, d, "t1")
	out, err := d.inside("t1", "sh", "-c", hostileTree)
	if err != nil {
		t.Fatalf("building the hostile tree: %v\n%s", err, out)
	}

	pool := filepath.Join(d.dir, "storage-pools/default")
	freeBefore := freeSpace(t, d.dir)

	t.Run("snapshot", func(t *testing.T) {
		took := runTreeOp(t, d, func(ctx context.Context) (*client.Operation, error) {
			return d.c.CreateInstanceSnapshot(ctx, "t1", api.InstanceSnapshotsPost{Name: "s0"})
		})
		t.Logf("snapshot of the hostile container took %v", took)
		checkHostileCopy(t, filepath.Join(pool, "containers-snapshots/t1/s0/upper"))
		if st, _ := d.c.GetInstanceState(context.Background(), "t1"); st.Status != "Running" {
			t.Fatalf("t1 is %s after the snapshot, want Running (thawed)", st.Status)
		}
	})

	t.Run("copy", func(t *testing.T) {
		took := runTreeOp(t, d, func(ctx context.Context) (*client.Operation, error) {
			return d.c.CreateInstance(ctx, api.InstancesPost{Name: "t2", Source: api.InstanceSource{Type: "copy", Source: "t1"}})
		})
		t.Logf("copy of the hostile container (and its snapshot) took %v", took)
		checkHostileCopy(t, filepath.Join(pool, "containers/t2/upper"))
		checkHostileCopy(t, filepath.Join(pool, "containers-snapshots/t2/s0/upper"))
	})

	t.Run("publish", func(t *testing.T) {
		var pub *client.Operation
		took := runTreeOp(t, d, func(ctx context.Context) (*client.Operation, error) {
			op, err := d.c.PublishImage(ctx, api.ImagesPost{Source: &api.ImagesPostSource{Type: "snapshot", Name: "t1/s0"}})
			pub = op
			return op, err
		})
		t.Logf("publish of the hostile snapshot took %v", took)
		fp, _ := pub.Metadata["fingerprint"].(string)
		if fp == "" {
			t.Fatalf("publish reported no fingerprint: %v", pub.Metadata)
		}

		tarball := filepath.Join(d.dir, "images", fp)
		checkArchive(t, tarball, "rootfs/")
		big := filepath.Join(pool, "images", fp, "rootfs/big")
		checkSparse(t, big)
	})

	t.Run("export", func(t *testing.T) {
		target := filepath.Join(d.dir, "t1.tar.gz")
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), treeOpTimeout)
		defer cancel()
		stop := guardDisk(t, d.dir, cancel)
		cmd := exec.CommandContext(ctx, berthBin, "export", "t1", target)
		cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
		out, err := cmd.CombinedOutput()
		stop()
		if err != nil {
			t.Fatalf("berth export (%v): %v\n%s", time.Since(start), err, out)
		}

		t.Logf("export of the hostile container took %v", time.Since(start))
		checkArchive(t, target, "backup/container/rootfs/")
		checkArchive(t, target, "backup/snapshots/s0/rootfs/")
		_ = os.Remove(target)
	})

	if used := freeBefore - freeSpace(t, d.dir); used > maxDiskGrowth {
		t.Fatalf("the operations used %d MiB of host disk", used>>20)
	}

	// A walk still running (the old code) would hold t1 and fill the disk: stop here.
	if t.Failed() {
		t.FailNow()
	}

	// Removing the deep trees first keeps the deletes below quick; without the sparse
	// file, the cancel tests below also run (and fail) on code that fills holes (with -run selecting
	// only the cancel tests, t2 and s0 do not exist).
	if del, err := d.c.DeleteInstance(context.Background(), "t2"); err == nil {
		must(t, del.Wait(context.Background()))
	}

	if del, err := d.c.DeleteInstanceSnapshot(context.Background(), "t1", "s0"); err == nil {
		must(t, del.Wait(context.Background()))
	}

	// Half a gigabyte of random data makes an xz publish last minutes: long enough to
	// cancel. A snapshot holds it too.
	out, err = d.inside("t1", "sh", "-c", "rm -rf /deep /links /big && dd if=/dev/urandom of=/real bs=1M count=512 status=none && sync")
	if err != nil {
		t.Fatalf("writing data: %v %s", err, out)
	}

	runTreeOp(t, d, func(ctx context.Context) (*client.Operation, error) {
		return d.c.CreateInstanceSnapshot(ctx, "t1", api.InstanceSnapshotsPost{Name: "s1"})
	})

	t.Run("cancel-operation", func(t *testing.T) {
		op := startLongPublish(t, d, "t1/s1")
		code, resp := d.raw("DELETE", "/1.0/operations/"+op.ID, nil)
		if code != 200 {
			t.Fatalf("DELETE /1.0/operations/%s: %d %s (the operation must be cancellable)", op.ID, code, resp.Error)
		}

		waitCancelled(t, d, op.ID)
		checkNoLeftovers(t, d, "t1", false)
		if st, _ := d.c.GetInstanceState(context.Background(), "t1"); st.Status != "Running" {
			t.Fatalf("t1 is %s after the cancelled publish, want Running", st.Status)
		}
	})

	t.Run("cancel-by-delete", func(t *testing.T) {
		d.berth("stop", "-f", "t1")
		op := startLongPublish(t, d, "t1")
		start := time.Now()
		// Deleting waits for nothing: the publish (minutes of xz) is cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		del, err := d.c.DeleteInstance(ctx, "t1")
		if err == nil {
			err = del.Wait(ctx)
		}

		if err != nil {
			t.Fatalf("deleting t1 during a publish (%v): %v", time.Since(start), err)
		}

		t.Logf("delete during a publish took %v", time.Since(start))
		waitCancelled(t, d, op.ID)
		checkNoLeftovers(t, d, "t1", true)
	})
}

// runTreeOp starts an operation and waits for it, failing when it takes longer than
// treeOpTimeout or when the host loses maxDiskGrowth of free space meanwhile.
func runTreeOp(t *testing.T, d *daemon, start func(ctx context.Context) (*client.Operation, error)) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), treeOpTimeout)
	defer cancel()
	begin := time.Now()
	op, err := start(ctx)
	if err != nil {
		t.Fatal(err)
	}

	stop := guardDisk(t, d.dir, cancel)
	err = op.Wait(ctx)
	stop()
	if err != nil {
		t.Fatalf("operation %s after %v: %v", op.Description, time.Since(begin), err)
	}

	return time.Since(begin)
}

// guardDisk cancels when the filesystem of dir loses more than maxDiskGrowth of free space:
// a walk that fills holes is caught in seconds instead of filling the disk.
func guardDisk(t *testing.T, dir string, cancel func()) (stop func()) {
	t.Helper()
	base := freeSpace(t, dir)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}

			var st syscall.Statfs_t
			if syscall.Statfs(dir, &st) == nil && base-int64(st.Bavail)*st.Bsize > maxDiskGrowth {
				t.Errorf("host free space fell by more than %d MiB: holes are being filled", maxDiskGrowth>>20)
				cancel()
				return
			}
		}
	}()

	return func() { close(done) }
}

func freeSpace(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	must(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// checkSparse checks a copy of /big: 2 TiB long, almost nothing allocated, the needle at
// 1 TiB.
func checkSparse(t *testing.T, path string) {
	t.Helper()
	var st syscall.Stat_t
	must(t, syscall.Stat(path, &st))
	if st.Size != twoTiB || st.Blocks*512 > 1<<20 {
		t.Fatalf("%s: %d bytes, %d allocated; want 2 TiB and sparse", path, st.Size, st.Blocks*512)
	}

	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	b := make([]byte, 6)
	_, err = f.ReadAt(b, 1<<40)
	if err != nil || string(b) != "needle" {
		t.Fatalf("%s: %q at 1 TiB (%v)", path, b, err)
	}
}

// checkHostileCopy checks a copied upper layer: sparse file, FIFO, socket, deep tree and
// hard links as the container made them.
func checkHostileCopy(t *testing.T, upper string) {
	t.Helper()
	checkSparse(t, filepath.Join(upper, "big"))
	for name, typ := range map[string]uint32{"fifo": syscall.S_IFIFO, "sock": syscall.S_IFSOCK} {
		var st syscall.Stat_t
		err := syscall.Lstat(filepath.Join(upper, name), &st)
		if err != nil || st.Mode&syscall.S_IFMT != typ {
			t.Fatalf("%s/%s: mode %o, %v; want type %o", upper, name, st.Mode, err, typ)
		}
	}

	var st syscall.Stat_t
	must(t, syscall.Stat(filepath.Join(upper, "links/f"), &st))
	if st.Nlink != 10001 {
		t.Fatalf("%s/links/f has %d links, want 10001", upper, st.Nlink)
	}

	out, err := exec.Command("find", filepath.Join(upper, "deep"), "-name", "bottom").CombinedOutput()
	depth := 0
	for _, c := range strings.Split(strings.TrimSpace(string(out)), "/") {
		if c == "d" {
			depth++
		}
	}

	if err != nil || depth != 5000 {
		t.Fatalf("deep tree in %s: %v, bottom at depth %d", upper, err, depth)
	}
}

// checkArchive reads a gzip tarball's headers (without reading the holes) under prefix:
// big is a 2 TiB sparse entry, the FIFO a FIFO, no socket, links hard links, the deep
// file present; and GNU tar lists big with its full size.
func checkArchive(t *testing.T, path, prefix string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Size() > 1<<30 {
		t.Fatalf("%s: %v (size %d)", path, err, fi.Size())
	}

	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	tr := tar.NewReader(zr)
	seen := map[string]*tar.Header{}
	links := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		must(t, err)
		rel, ok := strings.CutPrefix(hdr.Name, prefix)
		if !ok {
			continue
		}

		if strings.HasPrefix(rel, "links/l") && hdr.Typeflag == tar.TypeLink {
			links++
		}

		if strings.HasSuffix(rel, "/bottom") {
			rel = "bottom"
		}

		seen[rel] = hdr
	}

	big := seen["big"]
	if big == nil || big.Size != twoTiB || big.PAXRecords["GNU.sparse.major"] != "1" {
		t.Fatalf("%s: big is %+v, want a 2 TiB sparse entry", path, big)
	}

	if h := seen["fifo"]; h == nil || h.Typeflag != tar.TypeFifo {
		t.Fatalf("%s: fifo is %+v", path, h)
	}

	if seen["sock"] != nil || seen["bottom"] == nil || links != 10000 {
		t.Fatalf("%s: socket %v, bottom %v, %d hard links", path, seen["sock"] != nil, seen["bottom"] != nil, links)
	}

	out, err := exec.Command("tar", "-tvzf", path, prefix+"big").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprint(twoTiB)) {
		t.Fatalf("GNU tar on %s: %v\n%s", path, err, out)
	}
}

// startLongPublish publishes src with xz (minutes for the random data) and waits until
// the operation reports progress.
func startLongPublish(t *testing.T, d *daemon, src string) *client.Operation {
	t.Helper()
	typ := "instance"
	if strings.Contains(src, "/") {
		typ = "snapshot"
	}

	op, err := d.c.PublishImage(context.Background(), api.ImagesPost{
		Source: &api.ImagesPostSource{Type: typ, Name: src}, CompressionAlgorithm: "xz",
	})
	must(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, resp := d.raw("GET", "/1.0/operations/"+op.ID, nil)
		if strings.Contains(string(resp.Metadata), `"bytes"`) || strings.Contains(string(resp.Metadata), `"Cancel`) {
			return op
		}

		time.Sleep(100 * time.Millisecond)
	}

	return op // an old daemon reports no progress: go on and let the cancel fail
}

// waitCancelled waits (briefly) for operation id to end as Cancelled.
func waitCancelled(t *testing.T, d *daemon, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var status string
	for time.Now().Before(deadline) {
		code, resp := d.raw("GET", "/1.0/operations/"+id, nil)
		if code != 200 {
			t.Fatalf("GET operation %s: %d %s", id, code, resp.Error)
		}

		status = string(resp.Metadata)
		if strings.Contains(status, `"status":"Cancelled"`) {
			return
		}

		if strings.Contains(status, `"status":"Success"`) || strings.Contains(status, `"status":"Failure"`) {
			break
		}

		time.Sleep(100 * time.Millisecond)
	}

	t.Fatalf("operation %s did not end Cancelled: %s", id, status)
}

// checkNoLeftovers: no partial image spool, no snapshot view or temporary snapshot, and
// (once deleted) nothing of the instance mounted or on disk.
func checkNoLeftovers(t *testing.T, d *daemon, name string, deleted bool) {
	t.Helper()
	pool := filepath.Join(d.dir, "storage-pools/default")
	for _, pattern := range []string{
		filepath.Join(d.dir, "images", "upload-*"),
		filepath.Join(pool, "containers-snapshots", name, ".tmp-*"),
		filepath.Join(pool, "containers-snapshots", name, "berth-export-*"),
		filepath.Join(pool, "containers", ".tmp-*"),
		filepath.Join(d.dir, "backups", name, ".tmp-*"),
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			t.Errorf("left behind: %v", m)
		}
	}

	mounts := mountsNaming(hostMounts(t), d.dir+"/")
	left := mountsNaming(mounts, "/containers-snapshots/"+name+"/")
	if deleted {
		left = append(left, mountsNaming(mounts, "/containers/"+name+"/")...)
	}

	for _, m := range left {
		t.Errorf("mount left behind: %s (%s from %s, %s)", m.MountPoint, m.FSType, m.Source, m.SuperOptions)
	}

	if deleted {
		for _, p := range []string{filepath.Join(pool, "containers", name), filepath.Join(pool, "containers-snapshots", name), filepath.Join(d.dir, "instances", name)} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s still exists after the delete", p)
			}
		}
	}
}
