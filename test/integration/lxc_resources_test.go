package integration

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestLXCResources: lxc info --resources renders the host's CPUs, memory and disks, and
// GET /1.0/resources reports as many threads as this process can see CPUs (at most: it
// may be confined) and memory within bounds.
func TestLXCResources(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc := newLXCRunner(t, d)
	out := lxc.must("info", "--resources")
	for _, want := range []string{"CPU", "Memory:", "Total:"} {
		if !strings.Contains(out, want) {
			t.Errorf("lxc info --resources lacks %q:\n%s", want, out)
		}
	}

	code, env := d.raw(http.MethodGet, "/1.0/resources", nil)
	var r api.Resources
	err := json.Unmarshal(env.Metadata, &r)
	if code != http.StatusOK || err != nil {
		t.Fatalf("GET /1.0/resources: %d %v %s", code, err, env.Error)
	}

	threads := 0
	for _, s := range r.CPU.Sockets {
		for _, c := range s.Cores {
			threads += len(c.Threads)
		}
	}

	if threads != int(r.CPU.Total) || threads < runtime.NumCPU() {
		t.Errorf("threads %d, total %d, this process sees %d", threads, r.CPU.Total, runtime.NumCPU())
	}

	if r.Memory.Total == 0 || r.Memory.Used > r.Memory.Total {
		t.Errorf("memory: %+v", r.Memory)
	}

	if r.Storage.Disks == nil || r.Network.Cards == nil || r.GPU.Cards == nil {
		t.Errorf("lists must be [] rather than null: %s", env.Metadata)
	}
}
