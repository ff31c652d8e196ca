// Package gcfloor keeps the daemon's garbage collector from running once per request.
//
// berthd's live heap is small (2 MB with 60 containers running), and with Go's default
// GOGC=100 the heap goal is twice that: 4 MB. A list of 60 instances allocates about as
// much to render, so nearly every GET /1.0/instances?recursion=2 started a collection,
// which took berthd's CPU per list from ~5 ms (few collections) to 7-8 ms on the
// development VM. Raising GOGC for good would scale the goal with the live heap (GOGC=400
// is 5x whatever the heap is); what the daemon wants is a fixed headroom: the goal
// Headroom above the live heap, and GOGC's own 2x once the heap is big enough for that
// to be more.
//
// After each collection, Start's hook reads what the collection found and sets the GC
// percent that puts the goal there. It runs once per collection (a cleanup of an object
// made unreachable each cycle), so an idle daemon does no work for it.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Headroom is how far above the live heap the goal stays: what about six lists of 60
// instances allocate between collections. It costs at most this much more memory than
// GOGC=100 would keep, whatever the number of containers. With 60 running, a goal ~13 MB
// above the live heap kept most of what ~24 MB saved (berthd's CPU per list: 5.9 ms,
// against 5.0-5.6 ms, and 7.0-8.1 ms with Go's default) for half the memory (RSS 45 MB,
// against 52 MB and 35 MB).
const Headroom = 12 << 20

// minHeap is the runtime's smallest goal at GOGC=100; it scales with the percent
// (runtime/mgcpacer.go: heapMinimum), so a big percent on a small heap raises the goal
// through it, not through the heap.
const minHeap = 4 << 20

// maxPercent bounds the percent for a nearly empty heap.
const maxPercent = 10000

// The goal GOGC sets is the live heap plus GOGC percent of the live heap and the roots
// the collector scans (goroutine stacks and globals): their sum is the base the percent
// multiplies.
var (
	liveMetric  = "/gc/heap/live:bytes"
	rootMetrics = []string{"/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}
)

// Start tunes the collector for the rest of the process, unless GOGC is set in the
// environment (the admin's own choice stands, even one the runtime rejects). A memory
// limit (GOMEMLIMIT) still applies: it makes the collector run sooner whatever the
// percent. Call it once.
func Start() {
	if os.Getenv("GOGC") != "" {
		return
	}

	arm() // the first collection (at Go's initial 4 MB goal) sets the first percent
}

// sentinel is the object whose cleanup marks a collection. It holds a pointer so that it
// is never a tiny allocation (those share a block, and their cleanups may never run).
type sentinel struct {
	_ *byte
	_ [8]byte
}

// arm makes an object reachable by nothing: the next collection frees it, its cleanup
// adjusts the percent and arms the next.
func arm() {
	runtime.AddCleanup(new(sentinel), func(struct{}) {
		adjust()
		arm()
	}, struct{}{})
}

// adjust sets the GC percent for what the last collection found.
func adjust() {
	samples := []metrics.Sample{{Name: liveMetric}}
	for _, name := range rootMetrics {
		samples = append(samples, metrics.Sample{Name: name})
	}

	metrics.Read(samples)
	var live, base uint64
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // not this Go's metrics: leave the percent as it is
		}

		if i == 0 {
			live = s.Value.Uint64()
		}

		base += s.Value.Uint64()
	}

	debug.SetGCPercent(Percent(live, base))
}

// Percent is the GC percent whose goal is Headroom above a live heap of live bytes, for a
// base (live heap, stacks and globals) of base bytes; never less than Go's default 100.
func Percent(live, base uint64) int {
	if base == 0 {
		return 100
	}

	// GOGC's goal, live + base*p/100, at live + Headroom: rounded up.
	p := (Headroom*100 + base - 1) / base

	// The runtime's minimum goal, minHeap*p/100, is the larger for a base under minHeap:
	// the percent that puts that one at live + Headroom instead.
	if minHeap*p/100 > live+Headroom {
		p = (live + Headroom) * 100 / minHeap
	}

	return int(max(100, min(p, maxPercent)))
}

// goal is the heap goal the runtime sets for a percent, live heap and base: what Percent
// aims at (and what its tests check).
func goal(percent int, live, base uint64) uint64 {
	return max(live+base*uint64(percent)/100, minHeap*uint64(percent)/100)
}
