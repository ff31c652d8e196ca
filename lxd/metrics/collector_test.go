package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/mountinfo"
	"github.com/berth-dev/berth/test/testutil"
)

// fakeHost is a collector's world: instances, their cgroups, links and mounts.
type fakeHost struct {
	insts   []Instance
	usage   map[string]cgroup.Usage
	lists   atomic.Int32
	release chan struct{} // when set, List waits for it
	listErr error
	clock   time.Time
	mu      sync.Mutex
}

func (h *fakeHost) collector() *Collector {
	c := NewCollector(Config{List: h.list, TTL: 8 * time.Second})
	c.usage = func(name string) (cgroup.Usage, error) {
		u, ok := h.usage[name]
		if !ok {
			return cgroup.Usage{}, fmt.Errorf("%w: %s", cgroup.ErrGone, name)
		}

		return u, nil
	}

	c.links = func() (map[string]ip.Counters, error) {
		return map[string]ip.Counters{"vethH1": {RxBytes: 100, TxBytes: 2000, RxPackets: 1, TxPackets: 20, RxDropped: 3, TxErrors: 4}}, nil
	}

	c.statfs = func(path string, st *unix.Statfs_t) error {
		if path != "/pool/containers/web/rootfs" {
			return unix.ENOENT
		}

		st.Bsize, st.Blocks, st.Bfree, st.Bavail = 4096, 1000, 600, 500
		return nil
	}

	c.mounts = func() ([]mountinfo.Mount, error) {
		return []mountinfo.Mount{
			{MountPoint: "/", Source: "/dev/vda", FSType: "ext4"},
			{MountPoint: "/pool/containers/web/rootfs", Source: "overlay", FSType: "overlay"},
		}, nil
	}

	c.partitions = func() map[string]string { return map[string]string{"254:0": "vda"} }
	c.hostMem = func() (int64, error) { return 8 << 30, nil }
	c.now = func() time.Time {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.clock
	}

	return c
}

func (h *fakeHost) list(ctx context.Context) ([]Instance, error) {
	h.lists.Add(1)
	if h.release != nil {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	return h.insts, h.listErr
}

func (h *fakeHost) advance(d time.Duration) {
	h.mu.Lock()
	h.clock = h.clock.Add(d)
	h.mu.Unlock()
}

func webHost() *fakeHost {
	return &fakeHost{
		clock: time.Unix(1700000000, 0),
		insts: []Instance{
			{Name: "web", Status: "Running", RootFS: "/pool/containers/web/rootfs", NICs: []NIC{{Device: "eth0", HostName: "vethH1"}}},
			{Name: "idle", Status: "Stopped"},
			{Name: "ice", Status: "Frozen"},
			{Name: "gone", Status: "Running"}, // stopped between the list and the read
		},
		usage: map[string]cgroup.Usage{
			"web": {
				CPU:         []cgroup.CPUTime{{CPU: 0, User: 1500000000, System: 500000000}, {CPU: 1, User: 250000000}},
				CPUs:        2,
				Memory:      map[string]uint64{"rss": 8192, "cache": 4096, "active": 10, "slab_reclaimable": 100},
				MemoryUsage: 1 << 20, MemoryLimit: 4 << 20, Swap: 0, OOMKills: 2,
				IO:    map[string]cgroup.IOStat{"254:0": {ReadBytes: 10, WrittenBytes: 20, Reads: 1, Writes: 2}, "8:16": {Reads: 7}},
				Tasks: 12,
			},
			"ice": {Memory: map[string]uint64{"rss": 1}, MemoryUsage: 5, MemoryLimit: -1, Swap: -1, Tasks: -1},
		},
	}
}

func TestCollectorOutput(t *testing.T) {
	h := webHost()
	c := h.collector()

	body, err := c.Render(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	got := string(body)
	web := `name="web",project="default",type="container"`
	for _, want := range []string{
		`lxd_cpu_seconds_total{cpu="0",mode="system",` + web + `} 0.5`,
		`lxd_cpu_seconds_total{cpu="0",mode="user",` + web + `} 1.5`,
		`lxd_cpu_seconds_total{cpu="1",mode="user",` + web + `} 0.25`,
		`lxd_cpu_effective_total{` + web + `} 2`,
		`lxd_memory_RSS_bytes{` + web + `} 8192`,
		`lxd_memory_Cached_bytes{` + web + `} 4096`,
		`lxd_memory_Active_bytes{` + web + `} 10`,
		`lxd_memory_MemTotal_bytes{` + web + `} 4194304`,                                      // the limit, below the host's memory
		`lxd_memory_MemFree_bytes{` + web + `} 3145728`,                                       // limit - usage
		`lxd_memory_MemAvailable_bytes{` + web + `} 3149924`,                                  // free + cache + reclaimable slab
		`lxd_memory_MemTotal_bytes{name="ice",project="default",type="container"} 8589934592`, // no limit: the host's
		`lxd_memory_Swap_bytes{` + web + `} 0`,
		`lxd_memory_OOM_kills_total{` + web + `} 2`,
		`lxd_disk_read_bytes_total{device="vda",` + web + `} 10`,
		`lxd_disk_written_bytes_total{device="vda",` + web + `} 20`,
		`lxd_disk_reads_completed_total{device="8:16",` + web + `} 7`, // not in /proc/partitions: its numbers
		`lxd_disk_writes_completed_total{device="vda",` + web + `} 2`,
		`lxd_filesystem_size_bytes{device="overlay",fstype="overlay",mountpoint="/",` + web + `} 4096000`,
		`lxd_filesystem_free_bytes{device="overlay",fstype="overlay",mountpoint="/",` + web + `} 2457600`,
		`lxd_filesystem_avail_bytes{device="overlay",fstype="overlay",mountpoint="/",` + web + `} 2048000`,
		// The host end received 100 bytes: the container sent them.
		`lxd_network_transmit_bytes_total{device="eth0",` + web + `} 100`,
		`lxd_network_receive_bytes_total{device="eth0",` + web + `} 2000`,
		`lxd_network_receive_packets_total{device="eth0",` + web + `} 20`,
		`lxd_network_transmit_drop_total{device="eth0",` + web + `} 3`,
		`lxd_network_receive_errs_total{device="eth0",` + web + `} 4`,
		`lxd_procs_total{` + web + `} 12`,
		`lxd_instances{project="default",type="container"} 4`,
		`lxd_instances_by_state{project="default",state="running",type="container"} 2`,
		`lxd_instances_by_state{project="default",state="stopped",type="container"} 1`,
		`lxd_instances_by_state{project="default",state="frozen",type="container"} 1`,
		"# TYPE lxd_cpu_seconds_total counter",
		"# TYPE lxd_memory_RSS_bytes gauge",
		"# TYPE lxd_procs_total gauge",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}

	for _, absent := range []string{`name="idle"`, `name="gone"`, `lxd_procs_total{name="ice"`, `lxd_memory_Swap_bytes{name="ice"`} {
		if strings.Contains(got, absent) {
			t.Errorf("unexpected %s in:\n%s", absent, got)
		}
	}

	if !strings.HasSuffix(got, "\n# EOF\n") {
		t.Error("no # EOF at the end")
	}

	testutil.Promtool(t, body, PromtoolExceptions)
}

// A whole exposition (instances, daemon, requests) passes promtool with only LXD's names
// complained about.
func TestExpositionPromtool(t *testing.T) {
	h := webHost()
	c := h.collector()

	var q Requests
	q.observe("GET", &recorder{code: 200}, 3*time.Millisecond)
	q.observe("BREW", &recorder{code: 418}, time.Second)

	var own Set
	Daemon{Uptime: time.Minute, Operations: 1}.AddTo(&own)
	q.AddTo(&own)

	body, err := c.Render(context.Background(), &own)
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{"lxd_uptime_seconds 60\n", "lxd_operations_total 1\n", "\nlxd_go_goroutines ", "\nlxd_go_alloc_bytes_total ",
		`lxd_api_requests_total{code="418",method="other"} 1`, `lxd_api_request_duration_seconds_bucket{method="GET",le="0.005"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q", want)
		}
	}

	testutil.Promtool(t, body, PromtoolExceptions)

	// And promtool does catch what is wrong: a bad line, an unexpected complaint.
	if testing.Short() {
		return
	}

	for _, bad := range []string{"lxd_x{name=\"unterminated} 1\n# EOF\n", "# HELP lxd_fooBar x\n# TYPE lxd_fooBar gauge\nlxd_fooBar 1\n# EOF\n"} {
		ft := &fakeT{TB: t}
		func() {
			defer func() { _ = recover() }()
			testutil.Promtool(ft, []byte(bad), PromtoolExceptions)
		}()

		if !ft.failed {
			t.Errorf("promtool accepted %q", bad)
		}
	}
}

// fakeT records failures instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fakeT) Skip(...any)           { panic("skip") }

func TestCollectorCaches(t *testing.T) {
	h := webHost()
	c := h.collector()
	ctx := context.Background()

	first, err := c.Render(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Within the TTL: served from the cache, even though the world changed.
	h.usage["web"] = cgroup.Usage{Memory: map[string]uint64{"rss": 1}, MemoryUsage: 1, MemoryLimit: -1, Swap: -1, Tasks: 99}
	h.advance(7 * time.Second)

	second, err := c.Render(ctx)
	if err != nil || string(second) != string(first) || h.lists.Load() != 1 {
		t.Fatalf("within the TTL: %d lists, same body %v, %v", h.lists.Load(), string(second) == string(first), err)
	}

	// After it: collected again.
	h.advance(2 * time.Second)

	third, err := c.Render(ctx)
	if err != nil || h.lists.Load() != 2 || !strings.Contains(string(third), `lxd_procs_total{name="web",project="default",type="container"} 99`) {
		t.Fatalf("after the TTL: %d lists, %v:\n%s", h.lists.Load(), err, third)
	}

	// A failed collection is not cached: the next scrape tries again.
	h.advance(time.Minute)
	h.listErr = errors.New("database is locked")

	_, err = c.Render(ctx)
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("failed collection: %v", err)
	}

	h.listErr = nil

	_, err = c.Render(ctx)
	if err != nil || h.lists.Load() != 4 {
		t.Fatalf("after a failure: %d lists, %v", h.lists.Load(), err)
	}
}

// Scrapes arriving during a collection wait for it rather than starting their own; one
// that gives up does not cancel it for the others.
func TestCollectorSharesOneCollection(t *testing.T) {
	h := webHost()
	h.release = make(chan struct{})
	c := h.collector()

	impatient, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 11)
	go func() {
		_, err := c.Render(impatient)
		errs <- err
	}()

	bodies := make(chan []byte, 10)
	for range 10 {
		go func() {
			b, err := c.Render(context.Background())
			errs <- err
			bodies <- b
		}()
	}

	for h.lists.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	cancel()
	err := <-errs
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the impatient scrape: %v", err)
	}

	time.Sleep(20 * time.Millisecond) // let the others queue up behind the collection
	close(h.release)

	for range 10 {
		err := <-errs
		b := <-bodies
		if err != nil || !strings.Contains(string(b), `lxd_procs_total{name="web"`) {
			t.Fatalf("a waiting scrape: %v\n%s", err, b)
		}
	}

	if n := h.lists.Load(); n != 1 {
		t.Errorf("%d collections for 11 concurrent scrapes, want 1", n)
	}
}
