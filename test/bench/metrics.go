package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// metricsTTL is how long berthd serves one collection (lxd/metrics.DefaultTTL); a scrape
// that comes after it pays for a new collection.
const metricsTTL = 8 * time.Second

// benchMetrics measures GET /1.0/metrics with 10 and 100 running containers: a scrape that
// collects (the cache has expired: every container's cgroups, the veth counters and the
// root filesystems are read), a scrape served from the cache, and the collection itself as
// berthd reports it (lxd_metrics_collect_duration_seconds), and the instance list the
// collection starts with. Failures become notes.
func benchMetrics(b *berthd, r *report) {
	err := runMetricsBench(b, r)
	if err != nil {
		r.note("metrics: %v", err)
	}
}

func runMetricsBench(b *berthd, r *report) error {
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(b.dir, "unix.socket"))
	}}}

	launched := 0
	for _, target := range []int{10, 100} {
		running, err := runningCount(hc)
		if err != nil {
			return err
		}

		for ; running < target; running++ {
			_, err := b.berth("launch", "debian/12", fmt.Sprintf("m%d", launched))
			if err != nil {
				return fmt.Errorf("with %d running: %w", running, err)
			}

			launched++
		}

		// Let the last ones boot: the figures are for containers at rest.
		time.Sleep(15 * time.Second)

		for i := 0; i < *runs; i++ {
			time.Sleep(metricsTTL + 200*time.Millisecond)

			took, body, err := scrape(hc)
			if err != nil {
				return err
			}

			r.add(fmt.Sprintf("GET /1.0/metrics, %d running, collecting", target), took)

			collect, ok := sampleValue(body, "lxd_metrics_collect_duration_seconds")
			if ok {
				r.add(fmt.Sprintf("  of which the collection (berthd), %d running", target), time.Duration(collect*float64(time.Second)))
			}

			took, body, err = scrape(hc)
			if err != nil {
				return err
			}

			r.add(fmt.Sprintf("GET /1.0/metrics, %d running, cached", target), took)

			// The list a collection starts with (lxd/instance asks each monitor its state).
			t0 := time.Now()
			resp, err := hc.Get("http://unix.socket/1.0/instances?recursion=1")
			if err != nil {
				return err
			}

			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			r.add(fmt.Sprintf("  GET /1.0/instances?recursion=1, %d running", target), time.Since(t0))
			if i == 0 {
				r.note("/1.0/metrics with %d running: %d KiB, %d samples", target, len(body)>>10, countSamples(body))
			}
		}
	}

	return nil
}

func scrape(hc *http.Client) (time.Duration, []byte, error) {
	t0 := time.Now()
	resp, err := hc.Get("http://unix.socket/1.0/metrics")
	if err != nil {
		return 0, nil, err
	}

	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(t0)
	if err != nil {
		return 0, nil, err
	}

	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("GET /1.0/metrics: %s: %s", resp.Status, body)
	}

	return took, body, nil
}

// runningCount reads how many instances run from the metrics themselves.
func runningCount(hc *http.Client) (int, error) {
	_, body, err := scrape(hc)
	if err != nil {
		return 0, err
	}

	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "lxd_instances_by_state{") && strings.Contains(line, `state="running"`) {
			n, err := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			return n, err
		}
	}

	return 0, fmt.Errorf("no lxd_instances_by_state in /1.0/metrics")
}

// sampleValue returns the value of a sample without labels.
func sampleValue(body []byte, name string) (float64, bool) {
	s := bufio.NewScanner(strings.NewReader(string(body)))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), name+" ")
		if ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}

	return 0, false
}

func countSamples(body []byte) int {
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}

	return n
}
