package forward

import (
	"sync"
	"time"
)

// Operations remembers which member holds an operation created through this member, so
// that /1.0/operations/{id}[/wait|/websocket] reach it: a client that had an instance
// on member 2 created through member 1 then waits for, or connects the websockets of,
// that operation through member 1 too. Entries expire (operations are short-lived; a
// finished one is kept by its member for a while, as here) and their number is bounded.
type Operations struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	ops map[string]opEntry
}

type opEntry struct {
	member Member
	at     time.Time
}

// Bounds of Operations.
const (
	operationTTL = time.Hour
	maxOperation = 10000
)

// NewOperations returns an empty map.
func NewOperations() *Operations {
	return &Operations{ttl: operationTTL, max: maxOperation, ops: map[string]opEntry{}}
}

// Add records that operation id lives on m.
func (o *Operations) Add(id string, m Member) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if len(o.ops) >= o.max {
		o.expireLocked(now)
	}

	if len(o.ops) >= o.max {
		// Still full of live entries: drop the oldest.
		oldest, at := "", now
		for k, e := range o.ops {
			if e.at.Before(at) {
				oldest, at = k, e.at
			}
		}

		delete(o.ops, oldest)
	}

	o.ops[id] = opEntry{member: m, at: now}
}

// Lookup returns the member of operation id, if known.
func (o *Operations) Lookup(id string) (Member, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.ops[id]
	if !ok || time.Since(e.at) > o.ttl {
		return Member{}, false
	}

	return e.member, true
}

func (o *Operations) expireLocked(now time.Time) {
	for k, e := range o.ops {
		if now.Sub(e.at) > o.ttl {
			delete(o.ops, k)
		}
	}
}
