package integration

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/metrics"
	"github.com/berth-dev/berth/test/testutil"
)

// TestMetrics scrapes GET /1.0/metrics over the unix socket of a real berthd with a
// running container: LXD's names and labels with real values (memory, CPU that grows while
// the container burns CPU, network, root filesystem, processes), the daemon's own, the
// OpenMetrics content type and "# EOF", gzip, and promtool's verdict.
func TestMetrics(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c")
	d.waitRunning("c")

	body, resp := d.scrape(t, false)
	if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
		t.Errorf("Content-Type %q, want %q", ct, metrics.ContentType)
	}

	if !strings.HasSuffix(string(body), "\n# EOF\n") {
		t.Errorf("the exposition does not end with # EOF: ...%q", tail(string(body), 3))
	}

	m := parseExposition(t, body)
	c := map[string]string{"name": "c", "project": "default", "type": "container"}
	for _, name := range []string{"lxd_memory_RSS_bytes", "lxd_memory_MemTotal_bytes", "lxd_memory_Cached_bytes", "lxd_procs_total", "lxd_cpu_effective_total"} {
		v, ok := m.one(name, c)
		if !ok || v <= 0 {
			t.Errorf("%s{name=\"c\"} = %v (found %v), want > 0", name, v, ok)
		}
	}

	fs, ok := m.one("lxd_filesystem_size_bytes", withLabels(c, "mountpoint", "/"))
	if !ok || fs <= 0 {
		t.Errorf("lxd_filesystem_size_bytes of the root filesystem: %v (found %v)", fs, ok)
	}

	// The default profile's eth0: its host end's counters, turned around. systemd-networkd
	// inside has asked for an address by now, so the container has sent something.
	tx, ok := m.one("lxd_network_transmit_packets_total", withLabels(c, "device", "eth0"))
	if !ok || tx <= 0 {
		t.Errorf("lxd_network_transmit_packets_total{device=\"eth0\"} = %v (found %v), want > 0", tx, ok)
	}

	for name, want := range map[string]map[string]string{
		"lxd_instances":          {"project": "default", "type": "container"},
		"lxd_instances_by_state": {"state": "running"},
		"lxd_uptime_seconds":     {},
		"lxd_go_goroutines":      {},
	} {
		v, ok := m.one(name, want)
		if !ok || v <= 0 {
			t.Errorf("%s%v = %v (found %v), want > 0", name, want, v, ok)
		}
	}

	testutil.Promtool(t, body, metrics.PromtoolExceptions)

	// CPU time grows while the container burns CPU (in its own cgroups: exec places the
	// command there). The collection is cached for 8 s: poll until a fresh one shows it.
	// A busy host (the suite runs tests in parallel) may give 4 s of busy loop less than
	// 1 s of CPU: then another 4 s.
	before := m.sum("lxd_cpu_seconds_total", c)
	after := before
	for deadline := time.Now().Add(90 * time.Second); after < before+1 && time.Now().Before(deadline); {
		_, _ = d.berthErr("exec", "c", "--", "timeout", "4", "sh", "-c", "while :; do :; done") // exits 124
		for poll := time.Now().Add(10 * time.Second); time.Now().Before(poll); time.Sleep(time.Second) {
			body, _ = d.scrape(t, true)
			after = parseExposition(t, body).sum("lxd_cpu_seconds_total", c)
			if after >= before+1 {
				break
			}
		}
	}

	if after < before+1 {
		t.Errorf("lxd_cpu_seconds_total of c went from %.3f to %.3f after 4 s of a busy loop, want +1 s at least", before, after)
	}

	// The scrapes themselves were counted.
	reqs := parseExposition(t, body).sum("lxd_api_requests_total", map[string]string{"method": "GET", "code": "200"})
	if reqs < 2 {
		t.Errorf("lxd_api_requests_total{method=GET,code=200} = %v, want >= 2", reqs)
	}
}

// scrape fetches /1.0/metrics over the unix socket, gunzipping when asked for gzip.
func (d *daemon) scrape(t *testing.T, gz bool) ([]byte, *http.Response) {
	t.Helper()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "unix.socket"))
	}}}

	req, _ := http.NewRequest(http.MethodGet, "http://unix.socket/1.0/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}

	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /1.0/metrics: %s: %s", resp.Status, b)
	}

	var r io.Reader = resp.Body
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("asked for gzip, got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}

		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}

		r = zr
	}

	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}

	return body, resp
}

// exposition is a parsed scrape: samples with their labels.
type exposition []expSample

type expSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition reads the sample lines of an exposition (label values without escapes
// are enough here: instance and device names).
func parseExposition(t *testing.T, body []byte) exposition {
	t.Helper()
	var out exposition
	s := bufio.NewScanner(strings.NewReader(string(body)))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}

		i := strings.LastIndexByte(line, ' ')
		series, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}

		smp := expSample{name: series, labels: map[string]string{}, value: v}
		if j := strings.IndexByte(series, '{'); j >= 0 {
			smp.name = series[:j]
			for _, kv := range strings.Split(strings.TrimSuffix(series[j+1:], "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				smp.labels[k] = strings.Trim(v, `"`)
			}
		}

		out = append(out, smp)
	}

	return out
}

func (e exposition) matching(name string, labels map[string]string) []expSample {
	var out []expSample
	for _, s := range e {
		if s.name != name {
			continue
		}

		ok := true
		for k, v := range labels {
			ok = ok && s.labels[k] == v
		}

		if ok {
			out = append(out, s)
		}
	}

	return out
}

// one returns the value of the single sample matching, false if there is none or several.
func (e exposition) one(name string, labels map[string]string) (float64, bool) {
	m := e.matching(name, labels)
	if len(m) != 1 {
		return 0, false
	}

	return m[0].value, true
}

func (e exposition) sum(name string, labels map[string]string) float64 {
	var n float64
	for _, s := range e.matching(name, labels) {
		n += s.value
	}

	return n
}

func withLabels(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}

	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}

	return out
}
