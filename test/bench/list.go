package main

import (
	"fmt"
	"time"
)

// benchList times `berth list` with 10 and with 100 instances (10 of them running), once
// the running ones have booted: the figure is the list's, not that of a CPU shared with
// ten boots (~1 CPU-second each).
func benchList(b *berthd, r *report) error {
	created := 0
	for _, target := range []int{10, 100} {
		launched := []string{}
		for ; created < target; created++ {
			name := fmt.Sprintf("l%d", created)
			verb := "init"
			if created < 10 {
				verb = "launch"
				launched = append(launched, name)
			}

			_, err := b.berth(verb, "debian/12", name)
			if err != nil {
				return err
			}
		}

		for _, name := range launched {
			_, err := b.waitInstance(name)
			if err != nil {
				return err
			}
		}

		for i := 0; i < *runs; i++ {
			t0 := time.Now()
			_, err := b.berth("list")
			if err != nil {
				return err
			}

			r.add(fmt.Sprintf("berth list, %d instances (10 running)", target), time.Since(t0))
		}
	}

	return nil
}
