package main

import (
	"testing"
	"time"
)

// The probe measures a fault per page: a loop that touched nothing (or the same page)
// would report the cost of a store, well under 100 ns, and a unit mix-up (the whole
// mapping's time) would report milliseconds.
func TestAnonFaultIsPerPage(t *testing.T) {
	d, err := anonFault(faultPages)
	if err != nil {
		t.Fatal(err)
	}

	if d < 50*time.Nanosecond || d > time.Millisecond {
		t.Errorf("first touch of a page: %v, want a page fault's cost (0.05 µs .. 1 ms)", d)
	}
}

func TestTimeExec(t *testing.T) {
	d, err := timeExec([]string{"/bin/true"})
	if err != nil || d <= 0 {
		t.Errorf("timeExec(/bin/true) = %v, %v", d, err)
	}

	_, err = timeExec([]string{"/bin/false"})
	if err == nil {
		t.Error("timeExec(/bin/false) did not fail")
	}
}
