package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestPercent checks the goal the runtime sets with Percent's percent, over live heaps
// from nothing to 1 GB and roots (stacks, globals) up to 4 MB: Headroom above the live
// heap (give or take the rounding of a percent), or more where Go's default 2x is more,
// never less.
func TestPercent(t *testing.T) {
	if p := Percent(0, 0); p != 100 {
		t.Errorf("before any collection: %d, want Go's default 100", p)
	}

	const mb = 1 << 20
	for _, live := range []uint64{0, 64 << 10, mb / 2, 2 * mb, 3 * mb, 8 * mb, 12 * mb, 40 * mb, 1 << 30} {
		for _, roots := range []uint64{16 << 10, mb / 4, mb, 4 * mb} {
			base := live + roots
			p := Percent(live, base)
			g := goal(p, live, base)
			want := live + Headroom
			slack := max(base, minHeap)/100 + 1 // one percent's worth
			switch {
			case p < 100 || p > maxPercent:
				t.Errorf("live %d, base %d: percent %d out of [100, %d]", live, base, p, maxPercent)
			case p == 100 && g+slack < want:
				t.Errorf("live %d, base %d: Go's default, whose goal %d is under live + Headroom %d", live, base, g, want)
			case p > 100 && p < maxPercent && (g+slack < want || g > want+slack):
				t.Errorf("live %d, base %d: percent %d sets the goal at %d, want %d (±%d)", live, base, p, g, want, slack)
			}
		}
	}

	// The runtime's minimum goal scales with the percent: with a 2 MB heap, the percent
	// that puts GOGC's own goal 12 MB above it would set the minimum at 20 MB.
	if p := Percent(2*mb, 2*mb+mb/4); goal(p, 2*mb, 2*mb+mb/4) > 14*mb+mb/8 {
		t.Errorf("2 MB heap: percent %d, goal %d, want about %d", p, goal(p, 2*mb, 2*mb+mb/4), 14*mb)
	}
}

// TestStartLeavesGOGC checks that an admin's GOGC stands. It runs before the test that
// starts the hook for good.
func TestStartLeavesGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))

	Start()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := debug.SetGCPercent(150); p != 150 {
		t.Errorf("GC percent %d with GOGC=150 set, want 150", p)
	}
}

// TestStartTunesEachCollection checks that Start's hook sets the percent after a
// collection, and again after every later one (it re-arms).
func TestStartTunesEachCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	Start()
	for round := range 3 {
		debug.SetGCPercent(100)
		p := waitPercent(t)
		if p <= 100 {
			t.Fatalf("round %d: GC percent %d after a collection of this test's small heap, want it raised", round, p)
		}
	}
}

// waitPercent collects until the hook has run (it runs after the collection, on its own
// goroutine) and returns the percent it set.
func waitPercent(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		if p != 100 {
			return p
		}
	}

	return 100
}
