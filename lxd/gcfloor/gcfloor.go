// Package gcfloor keeps the daemon's garbage collector from running once per request.
//
// berthd's live heap is small (2 MB with 60 containers running), and with Go's default
// GOGC=100 the heap goal is twice that: 4 MB. A list of 60 instances allocates about as
// much to render, so nearly every GET /1.0/instances?recursion=2 started a collection,
// which took berthd's CPU per list from ~4 ms (few collections) to 6-8 ms on the
// development VM. Raising GOGC for good would scale the goal with the live heap (GOGC=400
// is 5x whatever the heap is); what the daemon wants is a fixed headroom: the goal at
// least Headroom above the live heap, and GOGC's own 2x once the heap is big enough for
// that to be more.
//
// After each collection, Start's hook reads the live heap the collection found and sets
// the GC percent that puts the goal there. It runs once per collection (a cleanup of an
// object made unreachable each cycle), so an idle daemon does no work for it.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Headroom is how far above the live heap the goal stays at least: what four or five
// lists of 60 instances allocate between collections. It costs at most this much more
// memory than GOGC=100 would keep, whatever the number of containers: 8 MB kept most of
// what 16 MB saved (berthd's CPU per list of 60: 5.9 ms, 5.0-5.6 with 16 MB, 7.0-8.1 with
// Go's default) for half the memory (RSS 45 MB, 52 with 16 MB, 35 with the default).
const Headroom = 8 << 20

// maxPercent bounds the percent for a nearly empty heap (Headroom over an 84 kB base).
const maxPercent = 10000

// The goal GOGC sets is the live heap plus GOGC percent of the live heap and the roots
// the collector scans (goroutine stacks and globals): their sum is the base the percent
// multiplies.
var baseMetrics = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Start tunes the collector for the rest of the process, unless GOGC is set in the
// environment (the admin's own choice stands). A memory limit (GOMEMLIMIT) still
// applies: it makes the collector run sooner whatever the percent.
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
	samples := make([]metrics.Sample, len(baseMetrics))
	for i, name := range baseMetrics {
		samples[i].Name = name
	}

	metrics.Read(samples)
	var base uint64
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // not this Go's metrics: leave the default
		}

		base += s.Value.Uint64()
	}

	debug.SetGCPercent(Percent(base))
}

// Percent is the GC percent whose goal is at least Headroom above the live heap, for a
// base (live heap, stacks and globals) of base bytes; never less than Go's default 100.
func Percent(base uint64) int {
	if base == 0 {
		return 100
	}

	p := (Headroom*100 + base - 1) / base
	return int(max(100, min(p, maxPercent)))
}
