// Package parallel runs the workers of one request's job on goroutines of their own.
//
// A request spread over every CPU (a list's encoding, a state gathering) must fail as it
// did on the request's own goroutine: a panic there is recovered by net/http and the
// daemon serves on, where one on a goroutine of its own would take berthd down. Run
// recovers each worker's panic and raises the first again on its caller once every
// worker is done.
package parallel

import "sync"

// Run runs work(0), ..., work(n-1) on n goroutines and returns when all have; a worker's
// panic is raised again here (the first by worker number), with its value.
func Run(n int, work func(w int)) {
	panics := make([]any, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[w] = recover() }()
			work(w)
		}()
	}

	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}
