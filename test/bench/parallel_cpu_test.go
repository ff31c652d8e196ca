package main

import (
	"testing"
	"time"
)

// machineBusy counts this process's own busy loop: at least most of it (other CPUs may
// idle meanwhile, but the loop's CPU is busy).
func TestMachineBusy(t *testing.T) {
	b0, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}

	spin := 300 * time.Millisecond
	for end := time.Now().Add(spin); time.Now().Before(end); {
	}

	b1, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}

	if d := b1 - b0; d < spin/2 {
		t.Fatalf("machine busy for %s during a %s busy loop", d, spin)
	}
}
