// Command bench measures Berth's speed figures against a real berthd and prints medians:
// first what the machine charges for a page fault and a process start (machine.go), then
// launch to systemd "running", start to running (each next to systemd's own boot time in
// the same container), 10 launches at once to all running, stop, list with 10 and 100 instances,
// memory (PSS) of berthd and of each monitor, the util-linux boot floor, list and exec
// over HTTPS against the unix socket (and against LXD's own HTTPS listener), and
// GET /1.0/metrics with 10 and 100 running containers, and a host filled with N idle
// containers (the density section, -density-n or BENCH_DENSITY_N, 50 by default), and
// a stopped container that wrote 500 MB moved between two berthd and between two LXD,
// against a local rsync of the same tree (the migrate section, -migrate-mb or
// BENCH_MIGRATE_MB), and clustering (write latency single host against three members,
// list across members, failover time; the cluster section).
//
// Run it with `make bench` (as root, after `make build`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/imagebuild"
	"github.com/berth-dev/berth/test/testutil"
)

var (
	runs   = flag.Int("runs", 5, "samples per figure")
	binDir = flag.String("bin", "bin", "directory with berthd and berth")
	only   = flag.String("only", "", "comma-separated sections to run: machine, lifecycle, parallel, network, floor, bootab, list, exec, snapshots, volumes, pools, remote, lxd, migrate, cluster, density, metrics (default all)")
)

// section reports whether -only selects name.
func section(name string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), name)
}

func main() {
	flag.Parse()
	lxcfsBefore := testutil.LxcfsPid()
	sysctls := readSysctls() // the bench's daemons raise them (host tuning, on by default)
	err := run()
	testutil.StopLxcfsStartedSince(lxcfsBefore) // the bench's daemons started it
	for _, s := range restoreSysctls(sysctls) {
		fmt.Println(s)
	}

	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench needs root")
	}

	image, err := imagebuild.CachedBuild(context.Background(), "debian/12", "/var/cache/berth/images", nil)
	if err != nil {
		return err
	}

	b, err := startBerthd(*binDir)
	if err != nil {
		return err
	}

	defer b.close()
	_, err = b.berth("image", "import", image, "--alias", "debian/12")
	if err != nil {
		return err
	}

	r := &report{}
	r.note("host tuning by the bench's berthd: %s", tuningLog(b.logPath()))

	if section("machine") {
		err = benchMachine(*binDir, r)
		if err != nil {
			return err
		}
	}

	if section("lifecycle") {
		err = benchLifecycle(b, r)
		if err != nil {
			return err
		}
	}

	if section("parallel") {
		err = benchParallel(b, r)
		if err != nil {
			return err
		}
	}

	if section("network") {
		benchNetwork(b, r)
	}

	if section("floor") {
		err = benchFloor(b, r)
		if err != nil {
			r.note("boot floor: %v", err)
		}
	}

	if section("bootab") {
		err = benchBootAB(b, r)
		if err != nil {
			return err
		}
	}

	if section("list") {
		err = benchList(b, r)
		if err != nil {
			return err
		}
	}

	if section("exec") {
		benchExec(b, r)
	}

	if section("snapshots") {
		benchSnapshots(b, r)
	}

	if section("volumes") {
		benchVolumes(b, r)
	}

	if section("pools") {
		benchPools(b, r)
	}

	if section("remote") {
		benchRemote(b, image, r)
	}

	if section("lxd") {
		benchLXD(b, image, r)
	}

	if section("migrate") {
		benchMigrate(b, image, r)
	}

	if section("cluster") {
		benchCluster(b, image, r)
	}

	if section("density") {
		quietBerth(b)
		err = benchDensity(image, r)
		if err != nil {
			return err
		}
	}

	// Last: it leaves 100 containers running.
	if section("metrics") {
		benchMetrics(b, r)
	}

	r.print()
	return nil
}

// report collects named samples and prints their medians.
type report struct {
	names   []string
	samples map[string][]time.Duration
	ratios  map[string][]float64 // printed after the durations, in rnames order
	rnames  []string
	notes   []string
}

func (r *report) add(name string, d time.Duration) {
	if r.samples == nil {
		r.samples = map[string][]time.Duration{}
	}

	if _, ok := r.samples[name]; !ok {
		r.names = append(r.names, name)
	}

	r.samples[name] = append(r.samples[name], d)
}

// reserve places rows, in this order, before their first sample; a row that gets none is
// not printed.
func (r *report) reserve(names ...string) {
	if r.samples == nil {
		r.samples = map[string][]time.Duration{}
	}

	for _, n := range names {
		if _, ok := r.samples[n]; !ok {
			r.names = append(r.names, n)
			r.samples[n] = nil
		}
	}
}

// addRatio records a sample of a dimensionless figure (a ratio of two durations).
func (r *report) addRatio(name string, v float64) {
	if r.ratios == nil {
		r.ratios = map[string][]float64{}
	}

	if _, ok := r.ratios[name]; !ok {
		r.rnames = append(r.rnames, name)
	}

	r.ratios[name] = append(r.ratios[name], v)
}

func (r *report) note(format string, a ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func (r *report) print() {
	w := 50
	for _, n := range r.names {
		w = max(w, len(n))
	}

	fmt.Println()
	fmt.Printf("%-*s %12s %12s %12s %5s\n", w, "figure", "median", "min", "max", "n")
	for _, n := range r.names {
		s := r.samples[n]
		if len(s) == 0 {
			continue
		}

		sorted := append([]time.Duration(nil), s...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		fmt.Printf("%-*s %12s %12s %12s %5d\n", w, n, round(median(s)), round(sorted[0]), round(sorted[len(sorted)-1]), len(s))
	}

	for _, n := range r.rnames {
		s := append([]float64(nil), r.ratios[n]...)
		sort.Float64s(s)
		fmt.Printf("%-50s %11.3fx %11.3fx %11.3fx %5d\n", n, s[len(s)/2], s[0], s[len(s)-1], len(s))
	}

	for _, n := range r.notes {
		fmt.Println(n)
	}
}

func round(d time.Duration) string {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < 100*time.Microsecond:
		return d.Round(100 * time.Nanosecond).String() // a page fault
	}

	return d.Round(time.Microsecond).String()
}

func absBin(dir, name string) string {
	p, _ := filepath.Abs(filepath.Join(dir, name))
	return p
}

func trim(s string) string { return strings.TrimSpace(s) }
