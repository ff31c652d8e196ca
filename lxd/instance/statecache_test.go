package instance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/shared/api"
)

// fakeGather counts its calls and the instances they read; each read returns the call's
// number as the instance's pid, so a test can tell which gathering an answer came from.
type fakeGather struct {
	calls   atomic.Int64
	reads   atomic.Int64
	release chan struct{} // if set, each call waits for it
}

func (f *fakeGather) gather(reqs []gatherReq) map[string]api.InstanceState {
	n := f.calls.Add(1)
	if f.release != nil {
		<-f.release
	}

	out := map[string]api.InstanceState{}
	for _, r := range reqs {
		f.reads.Add(1)
		out[r.name] = api.InstanceState{Pid: n}
	}

	return out
}

func TestStateCacheServesWithinTTLAndRefreshesAfter(t *testing.T) {
	f := &fakeGather{}
	c := newStateCache(time.Second, f.gather)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	mon := &container.Monitor{}
	reqs := []gatherReq{{name: "a", mon: mon}, {name: "b", mon: mon}}

	got := c.get(reqs)
	if f.calls.Load() != 1 || got["a"].Pid != 1 || got["b"].Pid != 1 {
		t.Fatalf("first get: %d gatherings, %+v", f.calls.Load(), got)
	}

	now = now.Add(900 * time.Millisecond)
	got = c.get(reqs)
	if f.calls.Load() != 1 || got["a"].Pid != 1 {
		t.Fatalf("within the TTL: %d gatherings, %+v", f.calls.Load(), got)
	}

	now = now.Add(200 * time.Millisecond)
	got = c.get(reqs)
	if f.calls.Load() != 2 || f.reads.Load() != 4 || got["a"].Pid != 2 || got["b"].Pid != 2 {
		t.Fatalf("past the TTL: %d gatherings of %d instances, %+v", f.calls.Load(), f.reads.Load(), got)
	}

	// A new run of an instance (a restart: another monitor) is gathered afresh, the
	// others still come from the cache.
	got = c.get([]gatherReq{{name: "a", mon: &container.Monitor{}}, {name: "b", mon: mon}})
	if f.calls.Load() != 3 || f.reads.Load() != 5 || got["a"].Pid != 3 || got["b"].Pid != 2 {
		t.Fatalf("after a restart of a: %d gatherings of %d instances, %+v", f.calls.Load(), f.reads.Load(), got)
	}

	// Entries of instances no longer asked about go once stale.
	now = now.Add(2 * time.Second)
	c.get(nil)
	c.mu.Lock()
	left := len(c.entries)
	c.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d stale entries kept", left)
	}
}

// Requests arriving while the state is being gathered wait for that gathering: many
// clients listing at once read the host once.
func TestStateCacheSingleFlight(t *testing.T) {
	f := &fakeGather{release: make(chan struct{})}
	c := newStateCache(time.Second, f.gather)
	mon := &container.Monitor{}
	reqs := []gatherReq{{name: "a", mon: mon}}

	var wg sync.WaitGroup
	results := make([]int64, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.get(reqs)["a"].Pid
		}()
	}

	// Let every request find the entry in flight before the gathering ends.
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	time.Sleep(50 * time.Millisecond)
	close(f.release)
	wg.Wait()

	if f.calls.Load() != 1 {
		t.Fatalf("%d gatherings for concurrent requests, want 1", f.calls.Load())
	}

	for i, pid := range results {
		if pid != 1 {
			t.Fatalf("request %d got %d, want the shared gathering's answer", i, pid)
		}
	}
}
