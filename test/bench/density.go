package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/tuning"
)

// densityN is how many containers the density section fills the host with.
var densityN = flag.Int("density-n", envInt("BENCH_DENSITY_N", 50), "containers in the density section (default $BENCH_DENSITY_N, else 50)")

// densityParallel is how many launches the density section runs at once (issue 12: 500
// launched 8 at a time).
const densityParallel = 8

// densityBurst is the launch-throughput figure's batch: launched all at once, timed until
// every one's systemd says "running".
const densityBurst = 10

// densitySettle is how long the filled host rests before its figures: the last
// containers' boot jobs end, the figures are for containers at rest.
const densitySettle = 10 * time.Second

func envInt(name string, def int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}

	return v
}

// benchDensity fills a host with idle containers (issue 12) on a daemon of its own, run
// as a user gets it (host tuning on), and measures: launch throughput (10 at once; N, 8
// at a time), what the host pays per container outside the containers' cgroups, the list
// and exec answers with 1, 10 and N running, and the time a restarted berthd takes to
// adopt N. Its daemon, containers and network are removed afterwards, on failure and on
// Ctrl-C too (main restores the sysctls the bench's daemons raised); an interruption is
// an error (the bench stops), a failure mid-way a note.
func benchDensity(image string, r *report) error {
	n := *densityN
	if n < 1 {
		return fmt.Errorf("density: %d containers: want at least 1 (BENCH_DENSITY_N)", n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop() // after the cleanup: a second Ctrl-C does not cut it short

	fmt.Fprintf(os.Stderr, "density: starting a berthd with host tuning on, %d containers\n", n)
	b, err := startBerthd(*binDir, tuning.EnvOff+"=1") // on, whatever the caller's environment says
	if err != nil {
		return fmt.Errorf("density: %w", err)
	}

	defer func() {
		fmt.Fprintln(os.Stderr, "density: cleaning up")
		for _, p := range b.teardown() {
			r.note("density cleanup: %s", p)
		}
	}() // the sysctls its berthd raised are restored by main, with those of the bench's first

	d := &density{ctx: ctx, b: b, r: r, n: n, hc: unixHTTP(b.dir)}
	err = d.run(image)
	if ctx.Err() != nil {
		return errors.New("density: interrupted")
	}

	if err != nil {
		r.note("density: stopped early: %v", err)
	}

	return nil
}

// density is one run of the density section.
type density struct {
	ctx context.Context
	b   *berthd
	r   *report
	n   int
	hc  *http.Client
}

func (d *density) run(image string) error {
	rows := []string{
		fmt.Sprintf("density: %d launched at once -> all running", densityBurst),
		fmt.Sprintf("density: %d launched, %d at a time: commands returned", d.n, densityParallel),
		fmt.Sprintf("density: %d launched, %d at a time -> all running", d.n, densityParallel),
	}

	for _, figure := range answerFigures {
		for _, k := range []int{1, densityBurst, d.n} {
			rows = append(rows, fmt.Sprintf(figure, k))
		}
	}

	d.r.reserve(append(rows, fmt.Sprintf(adoptionFigure, d.n))...)
	d.r.note("density: load average at start: %s", loadAvg())
	d.r.note("density: host tuning by berthd: %s", tuningLog(d.b.logPath()))

	_, err := d.b.berthCtx(d.ctx, "image", "import", image, "--alias", "debian/12")
	if err != nil {
		return err
	}

	// One container first: what a first launch does once (the image's layer unpacked,
	// lxcfs started) is not what each container costs.
	fresh := pssKB(d.b.cmd.Process.Pid)
	_, err = d.b.berthCtx(d.ctx, "launch", "debian/12", "warm")
	if err != nil {
		return err
	}

	err = d.deleteAll([]string{"warm"})
	if err != nil {
		return err
	}

	err = d.burst()
	if err != nil {
		return err
	}

	// The base of the memory figures: none running, at rest, after containers have come
	// and gone (berthd's heap as a daemon's is, not as a fresh one's).
	err = sleepCtx(d.ctx, densitySettle)
	if err != nil {
		return err
	}

	base, err := d.baseline()
	if err != nil {
		return err
	}

	d.r.note("density: berthd PSS %d kB fresh (image imported), %d kB with none running after %d rounds of %d (the base of the memory figures)",
		fresh, base.berthd, *runs, densityBurst)

	err = d.fill()
	if err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "density: %d running; resting until the load falls\n", d.n)
	err = d.rest()
	if err != nil {
		return err
	}

	d.r.note("density: load average with %d running, at rest: %s", d.n, loadAvg())
	err = d.overhead(base)
	if err != nil {
		return err
	}

	err = d.answers(d.names(d.n), "d0")
	if err != nil {
		return err
	}

	d.execServers()

	err = d.adoption()
	if err != nil {
		return err
	}

	d.r.note("density: host limits with %d running: %s", d.n, hostLimits(d.b.cmd.Process.Pid))
	d.r.note("density: load average at the end: %s", loadAvg())
	return nil
}

func (d *density) names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%d", i)
	}

	return out
}

// burst launches 10 containers at once and times until every one's systemd says
// "running", -runs times; the last batch stays for the figures at 10, then at 1.
func (d *density) burst() error {
	names := make([]string, densityBurst)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}

	for round := 0; round < *runs; round++ {
		fmt.Fprintf(os.Stderr, "density: %d launched at once, round %d\n", densityBurst, round+1)
		res := d.launchAll(names, densityBurst)
		if len(res.failed) > 0 {
			return fmt.Errorf("%d launched at once: %w", densityBurst, res.err())
		}

		if len(res.notRunning) > 0 {
			d.r.note("density: %d launched at once, round %d: %d not running%s", densityBurst, round+1, len(res.notRunning), res.detail())
		}

		d.r.add(fmt.Sprintf("density: %d launched at once -> all running", densityBurst), res.allRunning)
		if round < *runs-1 {
			err := d.deleteAll(names)
			if err != nil {
				return err
			}
		}
	}

	err := d.answers(names, names[0])
	if err != nil {
		return err
	}

	err = d.deleteAll(names[1:])
	if err != nil {
		return err
	}

	err = d.answers(names[:1], names[0])
	if err != nil {
		return err
	}

	return d.deleteAll(names[:1])
}

// fill launches N containers, 8 at a time, and times the launches and until every
// container's systemd says "running".
func (d *density) fill() error {
	fmt.Fprintf(os.Stderr, "density: launching %d, %d at a time\n", d.n, densityParallel)
	res := d.launchAll(d.names(d.n), densityParallel)
	d.r.add(fmt.Sprintf("density: %d launched, %d at a time: commands returned", d.n, densityParallel), res.launched)
	d.r.add(fmt.Sprintf("density: %d launched, %d at a time -> all running", d.n, densityParallel), res.allRunning)
	d.r.note("density: %d launched %d at a time: %d launch failures, %d not running%s", d.n, densityParallel,
		len(res.failed), len(res.notRunning), res.detail())
	if len(res.failed) > 0 {
		return res.err() // the figures with N running need N
	}

	return nil
}

// launchResult is what a batch of launches gave.
type launchResult struct {
	launched   time.Duration     // until the last launch command returned
	allRunning time.Duration     // until the last systemd said "running"
	failed     map[string]string // launch errors by instance
	notRunning map[string]string // systemd's word for those that did not reach "running"
}

func (l launchResult) err() error {
	if len(l.failed)+len(l.notRunning) == 0 {
		return nil
	}

	return fmt.Errorf("%d launch failures, %d not running%s", len(l.failed), len(l.notRunning), l.detail())
}

// detail quotes the first failure of each kind.
func (l launchResult) detail() string {
	s := ""
	for _, m := range []map[string]string{l.failed, l.notRunning} {
		for name, why := range m {
			s += fmt.Sprintf("; %s: %s", name, clipText(why, 300))
			break
		}
	}

	return s
}

// launchAll launches names, at most width at a time, and waits for each one's systemd
// (beside the launches: a launch slot frees when its command returns, as for a user).
func (d *density) launchAll(names []string, width int) launchResult {
	res := launchResult{failed: map[string]string{}, notRunning: map[string]string{}}
	var mu sync.Mutex
	var launches, waits sync.WaitGroup
	queue := make(chan string)
	t0 := time.Now()

	for range width {
		launches.Add(1)
		go func() {
			defer launches.Done()
			for name := range queue {
				_, err := d.b.berthCtx(d.ctx, "launch", "debian/12", name)
				if err != nil {
					mu.Lock()
					res.failed[name] = err.Error()
					mu.Unlock()
					continue
				}

				waits.Add(1)
				go func() {
					defer waits.Done()
					state, err := d.systemdState(name)
					if err != nil {
						state = err.Error()
					}

					if state != "running" {
						mu.Lock()
						res.notRunning[name] = state
						mu.Unlock()
					}
				}()
			}
		}()
	}

	for _, name := range names {
		if d.ctx.Err() != nil {
			break
		}

		queue <- name
	}

	close(queue)
	launches.Wait()
	res.launched = time.Since(t0)
	waits.Wait()
	res.allRunning = time.Since(t0)
	return res
}

// deleteAll force-deletes names, 8 at a time.
func (d *density) deleteAll(names []string) error {
	errs := parallel(names, densityParallel, func(name string) error {
		_, err := d.b.berthCtx(d.ctx, "delete", "-f", name)
		return err
	})

	return errors.Join(errs...)
}

// parallel runs f on every item, width at a time, and returns the errors.
func parallel(items []string, width int, f func(string) error) []error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := f(it)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}

	wg.Wait()
	return errs
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// rest waits until the filled host is at rest: at least densitySettle, then until the
// 1-minute load average is below twice the CPUs (hundreds of boots leave their jobs
// behind for minutes on 2 cores), at most densityRestMax. The answer figures are for a
// host at rest, not one still booting.
func (d *density) rest() error {
	err := sleepCtx(d.ctx, densitySettle)
	if err != nil {
		return err
	}

	deadline := time.Now().Add(densityRestMax)
	for time.Now().Before(deadline) {
		if load1() < float64(2*runtime.NumCPU()) {
			return nil
		}

		err := sleepCtx(d.ctx, 5*time.Second)
		if err != nil {
			return err
		}
	}

	d.r.note("density: the load did not fall below %d in %s", 2*runtime.NumCPU(), densityRestMax)
	return nil
}

// densityRestMax bounds the rest after the fill.
const densityRestMax = 5 * time.Minute

// load1 is the 1-minute load average (a large number when unknown).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1e9
	}

	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 1e9
	}

	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 1e9
	}

	return v
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}

	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}

	return fmt.Sprintf("%s (%d CPUs, shared with whatever else runs)", strings.Join(f[:3], " "), runtime.NumCPU())
}

func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}

	return s
}
