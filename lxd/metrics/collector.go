package metrics

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/mountinfo"
)

// DefaultTTL is how long one collection of the instance metrics is served, as in LXD:
// scrapers that come within it share it, so a scrape costs a cgroup read per instance at
// most once per TTL however many scrape.
const DefaultTTL = 8 * time.Second

// collectTimeout bounds one collection. It runs detached from the request that started
// it, since other scrapes may be waiting for it too.
const collectTimeout = time.Minute

// Config wires a Collector to the daemon.
type Config struct {
	// List returns every instance; it is called once per collection.
	List func(ctx context.Context) ([]Instance, error)
	// Cgroups is the host's layout with the daemon's parent (cgroup.ParentFor) set.
	Cgroups cgroup.Layout
	// TTL is how long a collection is served; 0 is DefaultTTL.
	TTL time.Duration
	Log *slog.Logger
}

// Collector gathers the instance metrics and caches them for a TTL.
type Collector struct {
	list func(ctx context.Context) ([]Instance, error)
	ttl  time.Duration
	log  *slog.Logger

	// What a collection reads; tests replace them.
	usage      func(name string) (cgroup.Usage, error)
	links      func() (map[string]ip.Counters, error)
	statfs     func(path string, st *unix.Statfs_t) error
	mounts     func() ([]mountinfo.Mount, error)
	partitions func() map[string]string
	hostMem    func() (int64, error)
	now        func() time.Time

	mu     sync.Mutex
	body   []byte    // the last collection, without "# EOF"
	at     time.Time // when it finished
	took   time.Duration
	flight *flight // the collection under way, nil if none
}

// flight is one collection that every scrape arriving meanwhile waits for.
type flight struct {
	done chan struct{}
	body []byte
	err  error
}

// NewCollector returns a Collector reading the host's cgroups, links and mounts.
func NewCollector(cfg Config) *Collector {
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}

	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	return &Collector{
		list:       cfg.List,
		ttl:        ttl,
		log:        log,
		usage:      cfg.Cgroups.ReadUsage,
		links:      ip.HostCounters,
		statfs:     unix.Statfs,
		mounts:     mountinfo.Self,
		partitions: readPartitions,
		hostMem:    sys.MemTotal,
		now:        time.Now,
	}
}

// Render returns a whole exposition: the instance metrics (from the cache when fresh),
// then the sets given (the daemon's own, always current), then "# EOF".
func (c *Collector) Render(ctx context.Context, sets ...*Set) ([]byte, error) {
	inst, took, err := c.instances(ctx)
	if err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	buf.Grow(len(inst) + 16<<10)
	buf.Write(inst)

	var own Set
	own.Family("lxd_metrics_collect_duration_seconds", Gauge, "How long the last collection of the instance metrics took.").Add(took.Seconds())
	own.WriteTo(&buf)

	for _, s := range sets {
		s.WriteTo(&buf)
	}

	buf.WriteString(eof)
	return buf.Bytes(), nil
}

// instances returns the cached instance metrics, collecting them if they are older than
// the TTL. Concurrent callers share one collection; a caller whose ctx ends stops waiting
// but the collection goes on for the others. Failures are not cached.
func (c *Collector) instances(ctx context.Context) ([]byte, time.Duration, error) {
	c.mu.Lock()
	if c.body != nil && c.now().Sub(c.at) < c.ttl {
		body, took := c.body, c.took
		c.mu.Unlock()
		return body, took, nil
	}

	f := c.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flight = f
		go c.run(f)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, 0, f.err
		}

		c.mu.Lock()
		took := c.took
		c.mu.Unlock()
		return f.body, took, nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

func (c *Collector) run(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()

	start := c.now()
	f.body, f.err = c.collect(ctx)
	took := c.now().Sub(start)

	c.mu.Lock()
	if f.err == nil {
		c.body, c.at, c.took = f.body, c.now(), took
	}

	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// collect reads every active instance once and renders their metrics.
func (c *Collector) collect(ctx context.Context) ([]byte, error) {
	start := c.now()
	insts, err := c.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}

	listed := c.now()

	slices.SortFunc(insts, func(a, b Instance) int { return cmp.Compare(a.Name, b.Name) })

	var active []*reading
	for _, i := range insts {
		if i.active() {
			active = append(active, &reading{inst: i})
		}
	}

	mounts := c.mountIndex()
	c.readAll(ctx, active, mounts)

	links, err := c.links()
	if err != nil {
		c.log.Warn("metrics: reading link counters", "err", err)
	}

	hostMem, err := c.hostMem()
	if err != nil {
		c.log.Warn("metrics: reading host memory", "err", err)
	}

	partitions := c.partitions()

	var set Set
	addCounts(&set, insts)
	for _, r := range active {
		if r.usage.Memory == nil {
			continue // gone while we read (stopped): no samples rather than zeroes
		}

		addInstance(&set, r, hostMem, links, partitions)
	}

	var buf bytes.Buffer
	set.WriteTo(&buf)
	c.log.Debug("metrics collected", "instances", len(insts), "active", len(active), "list", listed.Sub(start), "total", c.now().Sub(start))
	return buf.Bytes(), ctx.Err()
}

// readAll reads the cgroups and root filesystem of each instance, a few at a time.
func (c *Collector) readAll(ctx context.Context, rs []*reading, mounts map[string]mountinfo.Mount) {
	work := make(chan *reading)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(rs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				c.read(r, mounts)
			}
		}()
	}

	for _, r := range rs {
		if ctx.Err() != nil {
			break
		}

		work <- r
	}

	close(work)
	wg.Wait()
}

func (c *Collector) read(r *reading, mounts map[string]mountinfo.Mount) {
	u, err := c.usage(r.inst.Name)
	if err != nil {
		if !errors.Is(err, cgroup.ErrGone) {
			c.log.Warn("metrics: reading cgroups", "instance", r.inst.Name, "err", err)
		}

		return
	}

	r.usage = u
	if r.usage.Memory == nil {
		r.usage.Memory = map[string]uint64{}
	}

	if r.inst.RootFS == "" {
		return
	}

	var st unix.Statfs_t
	err = c.statfs(r.inst.RootFS, &st)
	if err != nil {
		return
	}

	m := mountOf(mounts, r.inst.RootFS)
	bs := uint64(st.Bsize)
	r.fs = &fsStat{device: m.Source, fstype: m.FSType, size: st.Blocks * bs, free: st.Bfree * bs, avail: st.Bavail * bs}
}

// mountIndex maps mount points to the mount seen there (the last one mounted).
func (c *Collector) mountIndex() map[string]mountinfo.Mount {
	ms, err := c.mounts()
	if err != nil {
		c.log.Warn("metrics: reading mounts", "err", err)
		return nil
	}

	out := make(map[string]mountinfo.Mount, len(ms))
	for _, m := range ms {
		out[m.MountPoint] = m
	}

	return out
}

// mountOf finds the mount a path is on: itself, or its nearest mounted parent.
func mountOf(mounts map[string]mountinfo.Mount, path string) mountinfo.Mount {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		m, ok := mounts[p]
		if ok || p == "/" || p == "." {
			return m
		}
	}
}

// readPartitions maps "major:minor" to block device names from /proc/partitions.
func readPartitions() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return out
	}

	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] != "major" {
			out[f[0]+":"+f[1]] = f[3]
		}
	}

	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}

	slices.Sort(keys)
	return keys
}
