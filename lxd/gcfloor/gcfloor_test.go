package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	cases := []struct {
		base uint64
		want int
	}{
		{0, 100},              // no collection yet: Go's default
		{1 << 10, maxPercent}, // a nearly empty heap: bounded
		{Headroom / 4, 400},   // goal: the heap and 4x it above
		{Headroom / 2, 200},   // exact
		{Headroom/2 + 1, 200}, // rounded up, never below the headroom
		{Headroom, 100},       // from here GOGC=100's own 2x is the headroom
		{1 << 30, 100},        // never below the default
		{Headroom*100/maxPercent + 1, maxPercent}, // just above the bound's base
	}

	for _, c := range cases {
		got := Percent(c.base)
		if got != c.want {
			t.Errorf("Percent(%d) = %d, want %d", c.base, got, c.want)
		}

		if c.base > 0 && got < maxPercent && c.base*uint64(got)/100 < Headroom {
			t.Errorf("Percent(%d) = %d leaves the goal %d above the heap, less than %d", c.base, got, c.base*uint64(got)/100, Headroom)
		}
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
