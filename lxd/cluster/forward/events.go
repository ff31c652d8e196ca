package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// Timing of the event relay.
const (
	// relayRefresh is how often the member list is read again: members that joined get
	// a subscription, members that left lose theirs.
	relayRefresh = 5 * time.Second
	// relayBackoffMin and relayBackoffMax bound the wait before resubscribing to a
	// member whose stream failed; the wait doubles on each failure in a row.
	relayBackoffMin = 250 * time.Millisecond
	relayBackoffMax = 10 * time.Second
	// relayIdle is how long a subscription may stay silent: a member's events server
	// pings every 15 s, so a stream quiet for longer than this is dead.
	relayIdle = 45 * time.Second
	// maxEventSize caps one relayed event.
	maxEventSize = 1 << 20
)

// Relay keeps one /1.0/events subscription to every other member and hands each event
// received to emit, with its location set to the member's name. The subscriptions are
// relayed requests (X-Berth-Forwarded), so each member sends only its own events: an
// event is relayed once, by the member that saw it, and never comes back.
type Relay struct {
	f       *Forwarder
	members func(ctx context.Context) ([]Member, error)
	emit    func(api.Event)
	dialer  *ws.Dialer

	mu   sync.Mutex
	subs map[string]*subscription // by member name
}

type subscription struct {
	address string
	cancel  context.CancelFunc
	done    chan struct{}
	kick    chan struct{} // cuts a reconnect's backoff short (buffered, 1)

	mu      sync.Mutex
	up      bool          // the stream is subscribed
	changed chan struct{} // closed (and replaced) when up changes
}

func (s *subscription) setUp(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up == up {
		return
	}

	s.up = up
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *subscription) state() (bool, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.changed
}

// WaitSubscribed waits, at most max, until the relay follows member name's events, and
// asks for a reconnect at once if it does not. A request forwarded to a member must not
// outrun this: a client waiting on this member for the events of an operation it made
// there (lxc and berth wait on the events stream) would otherwise miss its end, as after
// that member restarted (LXD waits the same way before forwarding). Without a
// subscription (the member is not known yet, or is this one) it returns at once.
func (rl *Relay) WaitSubscribed(ctx context.Context, name string, max time.Duration) bool {
	rl.mu.Lock()
	s := rl.subs[name]
	rl.mu.Unlock()
	if s == nil {
		return false
	}

	up, changed := s.state()
	if up {
		return true
	}

	select {
	case s.kick <- struct{}{}:
	default:
	}

	t := time.NewTimer(max)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		case <-changed:
		}

		up, changed = s.state()
		if up {
			return true
		}
	}
}

// NewRelay returns a relay that reads the members (self included, skipped by name)
// from members and passes their events to emit.
func (f *Forwarder) NewRelay(members func(ctx context.Context) ([]Member, error), emit func(api.Event)) *Relay {
	d := memberDialer()
	return &Relay{
		f:       f,
		members: members,
		emit:    emit,
		dialer:  ws.NewDialer(ws.DialConfig{Dial: d.DialContext, TLS: f.tls}),
		subs:    map[string]*subscription{},
	}
}

// Run keeps the subscriptions until ctx ends, then closes them all.
func (rl *Relay) Run(ctx context.Context) {
	t := time.NewTicker(relayRefresh)
	defer t.Stop()
	for {
		rl.refresh(ctx)
		select {
		case <-ctx.Done():
			rl.stopAll()
			return
		case <-t.C:
		}
	}
}

// Subscribed returns the names of the members with a subscription.
func (rl *Relay) Subscribed() []string {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var out []string
	for n := range rl.subs {
		out = append(out, n)
	}

	return out
}

func (rl *Relay) refresh(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, FanoutTimeout)
	ms, err := rl.members(lctx)
	cancel()
	if err != nil {
		rl.f.log.Warn("event relay: listing members", "err", err)
		return // keep what runs
	}

	want := map[string]Member{}
	for _, m := range ms {
		if m.Name != rl.f.origin && m.Address != "" {
			want[m.Name] = m
		}
	}

	rl.mu.Lock()
	defer rl.mu.Unlock()
	for name, s := range rl.subs {
		m, ok := want[name]
		if !ok || m.Address != s.address {
			s.cancel()
			<-s.done
			delete(rl.subs, name)
		}
	}

	for name, m := range want {
		if _, ok := rl.subs[name]; ok {
			continue
		}

		sctx, cancel := context.WithCancel(ctx)
		s := &subscription{address: m.Address, cancel: cancel, done: make(chan struct{}),
			kick: make(chan struct{}, 1), changed: make(chan struct{})}
		rl.subs[name] = s
		go func() {
			defer close(s.done)
			rl.follow(sctx, m, s)
		}()
	}
}

func (rl *Relay) stopAll() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for name, s := range rl.subs {
		s.cancel()
		<-s.done
		delete(rl.subs, name)
	}
}

// follow subscribes to m's events until ctx ends, resubscribing with backoff.
func (rl *Relay) follow(ctx context.Context, m Member, s *subscription) {
	wait := relayBackoffMin
	for {
		connected, err := rl.stream(ctx, m, s)
		s.setUp(false)
		if ctx.Err() != nil {
			return
		}

		if connected {
			wait = relayBackoffMin
		}

		rl.f.log.Debug("event relay: stream ended", "member", m.Name, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-s.kick:
		}

		wait = min(2*wait, relayBackoffMax)
	}
}

// stream reads m's events until the stream fails or ctx ends; connected reports
// whether it got as far as a subscription.
func (rl *Relay) stream(ctx context.Context, m Member, s *subscription) (connected bool, err error) {
	u := url.URL{Scheme: "wss", Host: m.Address, Path: "/1.0/events", RawQuery: "all-projects=true"}
	h := http.Header{}
	h.Set(HeaderForwarded, rl.f.origin)
	h.Set(HeaderCaller, CallerAdmin)
	dctx, cancel := context.WithTimeout(ctx, 2*DialTimeout)
	conn, err := rl.dialer.Dial(dctx, u.String(), h)
	cancel()
	if err != nil {
		return false, &UnreachableError{Member: m, Err: err}
	}

	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	s.setUp(true) // the member listens from before it completed the upgrade (events.Serve)

	conn.SetReadLimit(maxEventSize)
	_ = conn.SetReadDeadline(time.Now().Add(relayIdle))
	pong := conn.PingHandler()
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(relayIdle))
		return pong(data)
	})

	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return true, err
		}

		_ = conn.SetReadDeadline(time.Now().Add(relayIdle))
		var ev api.Event
		err = json.Unmarshal(data, &ev)
		if err != nil {
			rl.f.log.Debug("event relay: malformed event", "member", m.Name, "err", err)
			continue
		}

		ev.Location = m.Name
		rl.emit(ev)
	}
}
