package volumes

import (
	"slices"
	"sync"

	"github.com/berth-dev/berth/lxd/storage"
)

// Changes lock the volumes they touch, not the service: a copy of a large volume, a
// snapshot or a restore (each a full copy outside btrfs) holds only its own volumes, and
// every other volume stays free to change meanwhile. A change of one volume holds it
// exclusively (so two creates of one name, or a delete and a snapshot of one volume,
// run one after the other); a copy also holds its source, shared, so the source is not
// deleted, renamed or restored under it while other copies may read it too. The locks
// of one change are taken in one global order (pool, then name), so two changes that
// need each other's volumes wait instead of deadlocking.

// volLocks is the per-volume locks; an entry lives while someone holds or waits for it.
type volLocks struct {
	mu   sync.Mutex
	held map[key]*volLock

	restoring map[key]bool           // volumes a restore is exchanging (restore_busy.go)
	busy      func(inst string) bool // SetInstanceBusy
}

type volLock struct {
	rw   sync.RWMutex
	refs int
}

// copyDir copies a volume's tree for a copy (a variable for the tests of the locks).
var copyDir = storage.CopyVolumeDir

// lockVolume holds volume pool/name exclusively until the returned func is called.
func (s *Service) lockVolume(pool, name string) func() {
	return s.locks.take([]key{{pool, name}}, nil)
}

// lockCopy holds volume dst exclusively and src shared (a copy, a move) until the
// returned func is called. src may be the zero key (no source).
func (s *Service) lockCopy(dst, src key) func() {
	if src == (key{}) || src == dst {
		return s.locks.take([]key{dst}, nil)
	}

	return s.locks.take([]key{dst}, []key{src})
}

// take locks write exclusively and read shared, all in key order.
func (l *volLocks) take(write, read []key) func() {
	type want struct {
		k     key
		write bool
	}

	all := make([]want, 0, len(write)+len(read))
	for _, k := range write {
		all = append(all, want{k, true})
	}

	for _, k := range read {
		all = append(all, want{k, false})
	}

	slices.SortFunc(all, func(a, b want) int {
		if a.k.pool != b.k.pool {
			if a.k.pool < b.k.pool {
				return -1
			}

			return 1
		}

		switch {
		case a.k.name < b.k.name:
			return -1
		case a.k.name > b.k.name:
			return 1
		}

		return 0
	})

	// One key named twice (a rename to its own name) is held once, exclusively if
	// either asks for it: locking one RWMutex twice would wait forever.
	uniq := all[:0]
	for _, w := range all {
		if n := len(uniq); n > 0 && uniq[n-1].k == w.k {
			uniq[n-1].write = uniq[n-1].write || w.write
			continue
		}

		uniq = append(uniq, w)
	}

	all = uniq

	entries := make([]*volLock, len(all))
	l.mu.Lock()
	if l.held == nil {
		l.held = map[key]*volLock{}
	}

	for i, w := range all {
		e := l.held[w.k]
		if e == nil {
			e = &volLock{}
			l.held[w.k] = e
		}

		e.refs++
		entries[i] = e
	}

	l.mu.Unlock()

	for i, w := range all {
		if w.write {
			entries[i].rw.Lock()
		} else {
			entries[i].rw.RLock()
		}
	}

	return func() {
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].write {
				entries[i].rw.Unlock()
			} else {
				entries[i].rw.RUnlock()
			}
		}

		l.mu.Lock()
		for i, w := range all {
			entries[i].refs--
			if entries[i].refs == 0 {
				delete(l.held, w.k)
			}
		}

		l.mu.Unlock()
	}
}
