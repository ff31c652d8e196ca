package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/metrics"
	"github.com/berth-dev/berth/test/testutil"
)

// TestAttackMetricsCardinality: root inside a container tries to blow up or forge the
// host's metrics. It adds 200 veth interfaces (one named with a double quote, which Linux
// allows, to break out of a label value), renames nothing the host reads, and creates 300
// sub-cgroups in its delegated tree. The metrics read the host ends of the container's
// configured NICs and a fixed set of files in its own group, so the series of the
// container are the same before and after, and no name chosen inside reaches the output.
//
// Positive control: the interfaces exist in the container's namespace as the host sees it
// (/proc/<init>/net/dev, what a collector reading the namespace would report), and the
// sub-cgroups exist on the host: the attack did happen.
func TestAttackMetricsCardinality(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c")
	d.waitRunning("c")

	before := d.freshScrape(t)
	seriesBefore := seriesOf(parseExposition(t, before), "c")
	if len(seriesBefore) < 30 {
		t.Fatalf("only %d series for c before the attack", len(seriesBefore))
	}

	const links, groups = 200, 300
	script := fmt.Sprintf(`set -e
ip link add 'q"x' type veth peer name qy
i=0; while [ $i -lt %d ]; do echo "link add a$i type veth peer name b$i"; i=$((i+2)); done | ip -batch -
set --; i=0; while [ $i -lt %d ]; do set -- "$@" /sys/fs/cgroup/evil/g$i; i=$((i+1)); done; mkdir -p "$@"
echo done`, links, groups) // one ip and one mkdir: 400 execs took seconds of a loaded host's CPU

	out, err := d.inside("c", "sh", "-c", script)
	if err != nil || !strings.Contains(out, "done") {
		t.Fatalf("the attack could not run inside: %v\n%s", err, out)
	}

	// Positive control: the namespace has the interfaces, the host has the groups.
	netdev, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", d.initPID("c")))
	if err != nil {
		t.Fatal(err)
	}

	if n := strings.Count(string(netdev), ":"); n < links || !strings.Contains(string(netdev), `q"x:`) {
		t.Fatalf("positive control: %d interfaces in the container's namespace, want %d and q\"x", n, links)
	}

	l, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}

	evil := filepath.Join(l.Unified, cgroup.ParentFor(d.dir), "c", "evil")
	entries, err := os.ReadDir(evil)
	if err != nil || len(entries) < groups {
		t.Fatalf("positive control: %d sub-cgroups in %s (%v), want %d", len(entries), evil, err, groups)
	}

	after := d.freshScrape(t)
	seriesAfter := seriesOf(parseExposition(t, after), "c")
	if !slices.Equal(seriesBefore, seriesAfter) {
		t.Errorf("the container changed its series: %d before, %d after\nnew: %v", len(seriesBefore), len(seriesAfter), added(seriesBefore, seriesAfter))
	}

	for _, leak := range []string{`q\"x`, `q"x`, `device="a0"`, `device="b1"`, "evil"} {
		if strings.Contains(string(after), leak) {
			t.Errorf("a name chosen inside the container reached the metrics: %s", leak)
		}
	}

	testutil.Promtool(t, after, metrics.PromtoolExceptions)
}

// freshScrape waits out the metrics cache so the scrape reflects the present.
func (d *daemon) freshScrape(t *testing.T) []byte {
	t.Helper()
	time.Sleep(8*time.Second + 300*time.Millisecond)
	body, _ := d.scrape(t, false)
	return body
}

// seriesOf lists the series (name and labels, no value) of one instance, sorted.
func seriesOf(e exposition, name string) []string {
	var out []string
	for _, s := range e {
		if s.labels["name"] != name {
			continue
		}

		keys := make([]string, 0, len(s.labels))
		for k, v := range s.labels {
			keys = append(keys, k+"="+v)
		}

		slices.Sort(keys)
		out = append(out, s.name+"{"+strings.Join(keys, ",")+"}")
	}

	slices.Sort(out)
	return out
}

func added(before, after []string) []string {
	var out []string
	for _, s := range after {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}

	return out
}
