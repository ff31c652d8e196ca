package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/berth-dev/berth/shared/sparse"
	"github.com/berth-dev/berth/shared/tarsafe"
)

// ErrUnsafePath is wrapped by Unpack's error for an entry name or hard link target that
// contains ".." (absolute names lose their leading "/", as with GNU tar). It is tarsafe's
// error, so errors.Is holds for either name.
var ErrUnsafePath = tarsafe.ErrUnsafe

// UnpackStats counts what Unpack did.
type UnpackStats struct {
	Entries        int // entries written
	SkippedDevices int // character and block device nodes (Berth provides /dev)
	SkippedOther   int // entries outside metadata.yaml, templates/ and rootfs/, or of other types
}

// Unpacker extracts unified image tarballs.
type Unpacker struct {
	Log *slog.Logger

	// Workers creating rootfs entries in parallel; 0 means 4. File creation dominates an
	// unpack and partly waits on the filesystem, so more workers than CPUs still help.
	Workers int
}

// Unpack extracts tarball with the process's default logger; see Unpacker.Unpack.
func Unpack(tarball, rootfsDir, metaDir string) error {
	_, err := (&Unpacker{Log: slog.Default()}).Unpack(tarball, rootfsDir, metaDir)
	return err
}

// Unpack extracts a unified image tarball: rootfs/… into rootfsDir and metadata.yaml plus
// templates/… into metaDir (both must exist). Entries are hostile: a leading "/" is
// dropped (as GNU tar and LXD do), and a ".." component or a hard link to outside rootfs/ fails the whole unpack with ErrUnsafePath;
// parent directories are resolved inside the destination root (symlinks planted by earlier
// entries resolve as they would in the container, never on the host; a parent that does
// not resolve to a directory fails the unpack, as with GNU tar); every entry is created
// with *at calls that do not follow its final component. Modes (with setuid bits), numeric
// owners, mtimes and SCHILY.xattr.* records are applied; device nodes are skipped and
// counted. On error the destination is left partly filled for the caller to remove.
func (u *Unpacker) Unpack(tarball, rootfsDir, metaDir string) (UnpackStats, error) {
	var stats UnpackStats

	f, err := os.Open(tarball)
	if err != nil {
		return stats, fmt.Errorf("opening image %q: %w", tarball, err)
	}

	defer f.Close()

	tr, closer, err := OpenSparseTar(f)
	if err != nil {
		return stats, err
	}

	defer closer.Close()

	// An empty rootfsDir extracts only the metadata (the pool already holds the tree).
	if rootfsDir == "" {
		return stats, u.unpackMetadata(tr.Reader, metaDir, &stats)
	}

	return stats, u.unpackStream(tarball, tr, rootfsDir, metaDir, &stats)
}

// UnpackSplit extracts a split image: metadata.yaml and templates/ from the metadata
// tarball into metaDir, and the squashfs rootfs into rootfsDir (unless it is "": the pool
// holds the tree already). The squashfs is read by the SquashfsHelper process, which
// hands it on as a rootfs/ tar stream: every rule of Unpack applies to it unchanged.
func (u *Unpacker) UnpackSplit(metaTarball, squashfs, rootfsDir, metaDir string) (UnpackStats, error) {
	stats, err := u.Unpack(metaTarball, "", metaDir)
	if err != nil || rootfsDir == "" {
		return stats, err
	}

	stream, wait, err := openSquashfsTar(squashfs)
	if err != nil {
		return stats, err
	}

	tr := sparse.NewTarReader(stream)
	err = u.unpackStream(squashfs, tr, rootfsDir, metaDir, &stats)
	werr := wait()
	if werr != nil {
		// The helper's reason (a limit, a corrupt image) explains the truncated stream.
		return stats, errors.Join(werr, err)
	}

	return stats, err
}

// unpackStream extracts the entries of tr, an image tarball or a rootfs/ stream.
func (u *Unpacker) unpackStream(tarball string, tr *sparse.TarReader, rootfsDir, metaDir string, statsp *UnpackStats) error {
	stats := *statsp
	defer func() { *statsp = stats }()

	rootfs, err := openTree(rootfsDir)
	if err != nil {
		return err
	}

	defer rootfs.close()

	meta, err := openTree(metaDir)
	if err != nil {
		return err
	}

	defer meta.close()

	workers := u.Workers
	if workers <= 0 {
		workers = 4
	}

	d := newDispatcher(rootfs, workers)
	defer d.stop()

	metaWalker := newWalker(meta)
	defer metaWalker.close()

	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)

	var rootfsDirs, metaDirs []dirTime

	for {
		err := d.failed()
		if err != nil {
			return err
		}

		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return fmt.Errorf("reading image %q: %w", tarball, err)
		}

		comps, err := splitEntryName(hdr.Name)
		if err != nil {
			return err
		}

		switch {
		case len(comps) == 0:
			stats.SkippedOther++
		case comps[0] == "rootfs":
			err = d.entry(hdr, comps[1:], tr, *bufp, &stats, &rootfsDirs)
		case comps[0] == "templates" || (len(comps) == 1 && comps[0] == "metadata.yaml"):
			if hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeReg {
				stats.SkippedOther++ // metadata holds only directories and files
				continue
			}

			if hdr.Typeflag == tar.TypeDir {
				metaDirs = append(metaDirs, dirTime{rel: strings.Join(comps, "/"), times: timespecs(hdr)})
			}

			stats.Entries++
			err = metaWalker.extract(hdr, comps, nil, tr, *bufp)
		default:
			stats.SkippedOther++
		}

		if err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
	}

	err = d.flush()
	if err != nil {
		return err
	}

	err = rootfs.setDirTimes(rootfsDirs)
	if err == nil {
		err = meta.setDirTimes(metaDirs)
	}

	if err != nil {
		return err
	}

	if stats.SkippedDevices > 0 || stats.SkippedOther > 0 {
		u.Log.Info("Skipped image entries", "image", tarball, "devices", stats.SkippedDevices, "other", stats.SkippedOther)
	}

	return nil
}

// unpackMetadata extracts metadata.yaml and templates/ only.
func (u *Unpacker) unpackMetadata(tr *tar.Reader, metaDir string, stats *UnpackStats) error {
	meta, err := openTree(metaDir)
	if err != nil {
		return err
	}

	defer meta.close()
	w := newWalker(meta)
	defer w.close()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}

		if err != nil {
			return fmt.Errorf("reading image: %w", err)
		}

		comps, err := splitEntryName(hdr.Name)
		if err != nil {
			return err
		}

		isMeta := len(comps) > 0 && (comps[0] == "templates" || (len(comps) == 1 && comps[0] == "metadata.yaml"))
		if !isMeta || (hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeReg) {
			stats.SkippedOther++
			continue
		}

		stats.Entries++
		err = w.extract(hdr, comps, nil, tr, *bufp)
		if err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
	}
}

// splitEntryName returns the components of an entry name without "" and "." ones, a
// leading "/" dropped, refusing ".." and NUL (the check is shared with backups: see tarsafe).
func splitEntryName(name string) ([]string, error) {
	return tarsafe.Split(name)
}

const (
	// maxBuffered is the largest file handed to a worker; bigger ones are streamed.
	maxBuffered = 1 << 20
	// maxInFlight bounds the file data queued for workers.
	maxInFlight = 64 << 20
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, maxBuffered)
	return &b
}}

// dispatcher spreads rootfs entries over workers, by hash of their path so that entries
// for the same path stay in order. Entries that depend on earlier ones elsewhere (hard
// links, anything below a path that was not created as a directory, big files streamed
// from the tar reader) wait for the workers to drain and run on the calling goroutine.
// Safety does not depend on this ordering: every worker resolves paths with openat2.
type dispatcher struct {
	t       *tree
	main    *walker
	queues  []chan job
	pending sync.WaitGroup
	workers sync.WaitGroup

	// Paths created as something other than a directory: an entry below one must wait for
	// it, since it may be a symlink its parent resolves through.
	nonDirs map[string]bool

	mu       sync.Mutex
	err      error
	inFlight int64
	freed    *sync.Cond
}

type job struct {
	hdr   *tar.Header
	comps []string
	data  []byte
	bufp  *[]byte
}

func newDispatcher(t *tree, workers int) *dispatcher {
	d := &dispatcher{t: t, main: newWalker(t), nonDirs: map[string]bool{}}
	d.freed = sync.NewCond(&d.mu)

	for range workers {
		q := make(chan job, 64)
		d.queues = append(d.queues, q)
		d.workers.Add(1)

		go d.run(q)
	}

	return d
}

func (d *dispatcher) run(q chan job) {
	defer d.workers.Done()

	w := newWalker(d.t)
	defer w.close()

	for j := range q {
		if d.failed() == nil {
			err := w.extract(j.hdr, j.comps, j.data, nil, nil)
			if err != nil {
				d.fail(fmt.Errorf("unpacking %q: %w", j.hdr.Name, err))
			}
		}

		d.release(j)
		d.pending.Done()
	}
}

func (d *dispatcher) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
}

func (d *dispatcher) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()

	return d.err
}

// flush waits for every queued entry and returns the first error.
func (d *dispatcher) flush() error {
	d.pending.Wait()
	return d.failed()
}

func (d *dispatcher) stop() {
	for _, q := range d.queues {
		close(q)
	}

	d.workers.Wait()
	d.main.close()
}

func (d *dispatcher) acquire(n int64) {
	d.mu.Lock()
	for d.inFlight > 0 && d.inFlight+n > maxInFlight {
		d.freed.Wait()
	}

	d.inFlight += n
	d.mu.Unlock()
}

func (d *dispatcher) release(j job) {
	if j.bufp == nil {
		return
	}

	bufPool.Put(j.bufp)

	d.mu.Lock()
	d.inFlight -= maxBuffered
	d.freed.Broadcast()
	d.mu.Unlock()
}

// entry handles one rootfs entry at comps (empty for rootfs/ itself).
func (d *dispatcher) entry(hdr *tar.Header, comps []string, r io.Reader, buf []byte, stats *UnpackStats, dirs *[]dirTime) error {
	rel := strings.Join(comps, "/")

	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		stats.SkippedDevices++
		return nil
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		stats.SkippedOther++
		return nil
	}

	stats.Entries++

	if len(comps) == 0 {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: rootfs/ must be a directory", ErrUnsafePath)
		}

		*dirs = append(*dirs, dirTime{rel: "", times: timespecs(hdr)})

		return d.t.applyMeta(d.t.rootFd, hdr)
	}

	if hdr.Typeflag == tar.TypeDir {
		*dirs = append(*dirs, dirTime{rel: rel, times: timespecs(hdr)})
	} else {
		d.nonDirs[rel] = true
	}

	// Deep entries stay on the main walker, whose cached parent follows a chain of nested
	// directories: a worker would resolve each one from the root (quadratic in depth).
	sync := hdr.Typeflag == tar.TypeLink || hdr.Size > maxBuffered || len(rel) > 512
	if hdr.Typeflag == tar.TypeLink {
		// Check before waiting, so a hostile link fails fast.
		_, err := hardlinkSource(hdr)
		if err != nil {
			return err
		}
	}

	for i := 1; i < len(comps) && !sync; i++ {
		sync = d.nonDirs[strings.Join(comps[:i], "/")]
	}

	if sync {
		err := d.flush()
		if err != nil {
			return err
		}

		return d.main.extract(hdr, comps, nil, r, buf)
	}

	j := job{hdr: hdr, comps: comps}
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
		d.acquire(maxBuffered)
		j.bufp = bufPool.Get().(*[]byte)

		j.data = (*j.bufp)[:hdr.Size]

		_, err := io.ReadFull(r, j.data)
		if err != nil {
			d.release(j)
			return fmt.Errorf("reading image entry: %w", err)
		}
	}

	h := fnv.New32a()
	_, _ = h.Write([]byte(rel))

	d.pending.Add(1)
	d.queues[h.Sum32()%uint32(len(d.queues))] <- j

	return nil
}
