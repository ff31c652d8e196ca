package instance

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/shared/api"
)

// StateTTL is how long a running instance's gathered state (pid, processes, CPU, memory,
// network, disk) is served before it is read again. Within it, any number of lists and
// state requests cost no reads of the host: the figures are a second old at most.
const StateTTL = time.Second

// gatherReq is one running instance whose state is wanted: its monitor (the run the
// state describes) and its expanded config and devices (its NICs).
type gatherReq struct {
	name    string
	mon     *container.Monitor
	config  map[string]string
	devices map[string]map[string]string
}

// stateCache keeps the gathered state of running instances for a TTL. Requests that want
// an instance whose state is being gathered wait for that gathering instead of starting
// their own (single flight), so however many clients list at once, the host is read once
// per instance per TTL. Safe for concurrent use.
type stateCache struct {
	ttl    time.Duration
	now    func() time.Time
	gather func(reqs []gatherReq) map[string]api.InstanceState

	mu      sync.Mutex
	entries map[string]*stateEntry
}

// stateEntry is one instance's gathered state. ready is closed once st and at are set.
type stateEntry struct {
	mon   *container.Monitor // the run it describes: a new run is gathered afresh
	at    time.Time          // when its gathering started
	ready chan struct{}
	st    api.InstanceState
}

func newStateCache(ttl time.Duration, gather func(reqs []gatherReq) map[string]api.InstanceState) *stateCache {
	return &stateCache{ttl: ttl, now: time.Now, gather: gather, entries: map[string]*stateEntry{}}
}

// get returns the state of each requested instance: from the cache when it is fresh, from
// a gathering under way, or gathered now in one batch with the others that need it.
func (c *stateCache) get(reqs []gatherReq) map[string]api.InstanceState {
	now := c.now()
	out := make(map[string]api.InstanceState, len(reqs))

	var mine []gatherReq
	var mineEntries []*stateEntry
	waits := map[string]*stateEntry{}

	c.mu.Lock()
	for _, r := range reqs {
		e := c.entries[r.name]
		if e != nil && e.mon == r.mon {
			select {
			case <-e.ready:
				if now.Sub(e.at) < c.ttl {
					out[r.name] = e.st
					continue
				}
			default:
				waits[r.name] = e
				continue
			}
		}

		e = &stateEntry{mon: r.mon, at: now, ready: make(chan struct{})}
		c.entries[r.name] = e
		mine = append(mine, r)
		mineEntries = append(mineEntries, e)
	}

	c.pruneLocked(now)
	c.mu.Unlock()

	if len(mine) > 0 {
		c.fill(mine, mineEntries, out)
	}

	for name, e := range waits {
		<-e.ready
		out[name] = e.st
	}

	return out
}

// fill gathers reqs into their entries and out. The entries are released even if the
// gathering panics, so that no request waits for them forever.
func (c *stateCache) fill(reqs []gatherReq, entries []*stateEntry, out map[string]api.InstanceState) {
	var got map[string]api.InstanceState
	defer func() {
		for i, e := range entries {
			e.st = got[reqs[i].name]
			close(e.ready)
		}
	}()

	got = c.gather(reqs)
	for _, r := range reqs {
		out[r.name] = got[r.name]
	}
}

// pruneLocked drops the entries that have gone stale: those of instances that stopped or
// were deleted leave with them. Preconditions: c.mu is held.
func (c *stateCache) pruneLocked(now time.Time) {
	for name, e := range c.entries {
		select {
		case <-e.ready:
			if now.Sub(e.at) >= c.ttl {
				delete(c.entries, name)
			}
		default:
		}
	}
}
