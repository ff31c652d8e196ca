package parallel

import (
	"sync/atomic"
	"testing"
)

// TestRun: every worker runs, once, and Run returns after all of them; a worker's panic
// reaches Run's caller after the others have finished.
func TestRun(t *testing.T) {
	var ran [8]atomic.Int32
	Run(len(ran), func(w int) { ran[w].Add(1) })
	for w := range ran {
		if n := ran[w].Load(); n != 1 {
			t.Errorf("worker %d ran %d times", w, n)
		}
	}

	var done atomic.Int32
	func() {
		defer func() {
			if p := recover(); p != "worker 2" {
				t.Errorf("recovered %v, want worker 2's panic", p)
			}

			if done.Load() != 3 {
				t.Errorf("%d other workers done when the panic reached the caller, want 3", done.Load())
			}
		}()

		Run(4, func(w int) {
			if w == 2 {
				panic("worker 2")
			}

			done.Add(1)
		})
		t.Error("no panic")
	}()
}
