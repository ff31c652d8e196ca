package forward

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// eventsMember is a member's /1.0/events as the daemon serves it: a relayed
// subscription (another member's) gets this member's own events only.
type eventsMember struct {
	m      Member
	hub    *events.Server
	srv    *httptest.Server
	tls    *tls.Config
	handle http.Handler
}

func newEventsMember(t *testing.T, id int64, name string) *eventsMember {
	t.Helper()
	em := &eventsMember{hub: events.NewServer(testLog())}
	em.hub.SetLocation(name)
	em.handle = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wl, err := em.hub.NewWebsocketListener(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}

		if IsForwarded(r) {
			wl.LocalOnly()
		}

		_ = wl.Serve(w, r)
	})
	em.m, em.tls, em.srv = member(t, name, em.handle)
	em.m.ID = id
	return em
}

// restart serves the member again on the same address after a stop.
func (em *eventsMember) restart(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", em.m.Address)
	if err != nil {
		t.Fatalf("listening again on %s: %v", em.m.Address, err)
	}

	em.srv = httptest.NewUnstartedServer(em.handle)
	em.srv.Listener = l
	em.srv.StartTLS()
	t.Cleanup(em.srv.Close)
}

// observer collects the events a client of a member's /1.0/events sees.
type observer struct {
	mu  sync.Mutex
	got []api.Event
}

func observe(t *testing.T, em *eventsMember) *observer {
	t.Helper()
	d := ws.NewDialer(ws.DialConfig{TLS: em.tls})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.Dial(ctx, "wss://"+em.m.Address+"/1.0/events?all-projects=true", nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = conn.Close() })
	o := &observer{}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}

			var ev api.Event
			_ = json.Unmarshal(data, &ev)
			o.mu.Lock()
			o.got = append(o.got, ev)
			o.mu.Unlock()
		}
	}()

	return o
}

// count is how many events of source were seen, and their locations.
func (o *observer) count(source string) (int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	var locs []string
	for _, ev := range o.got {
		var md api.EventLifecycle
		_ = json.Unmarshal(ev.Metadata, &md)
		if md.Source == source {
			n++
			locs = append(locs, ev.Location)
		}
	}

	return n, locs
}

// waitFor sends probes on from until to's observer sees one (the relay subscribed).
func waitFor(t *testing.T, from *eventsMember, to *observer, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		from.hub.SendLifecycle("default", "probe", what, nil)
		time.Sleep(50 * time.Millisecond)
		if n, _ := to.count(what); n > 0 {
			return
		}
	}

	t.Fatalf("no relayed event %s within 10s", what)
}

// TestEventsRelay: each member's /1.0/events shows the events of both, each exactly
// once, with the location of the member it happened on, and no event comes back to
// its member (no loop); a member that restarts is subscribed to again.
func TestEventsRelay(t *testing.T) {
	a, b := newEventsMember(t, 1, "a"), newEventsMember(t, 2, "b")
	members := func(context.Context) ([]Member, error) { return []Member{a.m, b.m}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, em := range []*eventsMember{a, b} {
		relay := New(em.m.Name, em.tls, testLog()).NewRelay(members, em.hub.Relay)
		wg.Add(1)
		go func() { defer wg.Done(); relay.Run(ctx) }()
	}

	oa, ob := observe(t, a), observe(t, b)
	waitFor(t, b, oa, "/probe/b")
	waitFor(t, a, ob, "/probe/a")

	b.hub.SendLifecycle("default", "instance-started", "/1.0/instances/on-b", nil)
	a.hub.SendLifecycle("default", "instance-started", "/1.0/instances/on-a", nil)
	time.Sleep(500 * time.Millisecond) // a loop would repeat them meanwhile

	for _, c := range []struct {
		o      *observer
		seen   string
		source string
		loc    string
	}{
		{oa, "a", "/1.0/instances/on-b", "b"}, {oa, "a", "/1.0/instances/on-a", "a"},
		{ob, "b", "/1.0/instances/on-b", "b"}, {ob, "b", "/1.0/instances/on-a", "a"},
	} {
		n, locs := c.o.count(c.source)
		if n != 1 || locs[0] != c.loc {
			t.Errorf("member %s's events: %s seen %d times at %v, want once at %s", c.seen, c.source, n, locs[:min(len(locs), 5)], c.loc)
		}
	}

	// b goes away and comes back: a subscribes again.
	b.srv.CloseClientConnections()
	b.srv.Close()
	b.restart(t)
	waitFor(t, b, oa, "/probe/b-again")
}

// TestEventsRelayOfflineMember: a member that cannot be reached costs the relay
// nothing but retries; the others' events still flow.
func TestEventsRelayOfflineMember(t *testing.T) {
	a, b := newEventsMember(t, 1, "a"), newEventsMember(t, 2, "b")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { _ = dead.Close() }) // accepts nothing: a blackholed member
	c := Member{ID: 3, Name: "c", Address: dead.Addr().String(), Online: true}
	members := func(context.Context) ([]Member, error) { return []Member{a.m, b.m, c}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	relay := New("a", a.tls, testLog()).NewRelay(members, a.hub.Relay)
	go func() { defer close(done); relay.Run(ctx) }()

	oa := observe(t, a)
	waitFor(t, b, oa, "/probe/b")
	subs := strings.Join(relay.Subscribed(), ",")
	if !strings.Contains(subs, "b") || !strings.Contains(subs, "c") || strings.Contains(subs, "a") {
		t.Errorf("subscriptions %q, want b and c (not self)", subs)
	}

	start := time.Now()
	cancel()
	<-done
	if time.Since(start) > 2*time.Second {
		t.Errorf("stopping the relay took %v", time.Since(start))
	}
}

// TestWaitSubscribed: a request for a member that just restarted waits until the relay
// follows its events again, and the wait cuts the relay's backoff short; the first
// event the member sends after that reaches this member's listeners. Without the wait
// a client waiting here for an operation it made there misses its end.
func TestWaitSubscribed(t *testing.T) {
	a, b := newEventsMember(t, 1, "a"), newEventsMember(t, 2, "b")
	members := func(context.Context) ([]Member, error) { return []Member{a.m, b.m}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	relay := New("a", a.tls, testLog()).NewRelay(members, a.hub.Relay)
	go func() { defer close(done); relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	oa := observe(t, a)
	waitFor(t, b, oa, "/probe/b")
	if !relay.WaitSubscribed(ctx, "b", time.Second) {
		t.Fatal("WaitSubscribed false while the relay follows b")
	}

	if relay.WaitSubscribed(ctx, "nobody", time.Second) {
		t.Error("WaitSubscribed true for a member the relay does not know")
	}

	// b is down long enough for the backoff to grow past the wait below.
	b.srv.CloseClientConnections()
	b.srv.Close()
	time.Sleep(4 * time.Second)
	b.restart(t)

	start := time.Now()
	if !relay.WaitSubscribed(ctx, "b", 2*time.Second) {
		t.Fatalf("the relay did not follow b again within 2 s of its restart")
	}

	t.Logf("subscribed again %s after the wait began", time.Since(start).Round(time.Millisecond))
	b.hub.SendLifecycle("default", "operation-done", "/1.0/operations/x", nil)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := oa.count("/1.0/operations/x"); n == 1 {
			return
		}

		time.Sleep(20 * time.Millisecond)
	}

	t.Error("the first event b sent after the wait did not reach a's listeners")
}
