package ws

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Session is the server's side of one exec or console operation's streams:
// one websocket per stream name, each selected by its own secret.
type Session struct {
	secrets  map[string]string
	required []string
	ready    chan struct{} // closed once every required stream is connected

	mu     sync.Mutex
	conns  map[string]*Conn
	taken  map[string]bool // streams with a connection in progress or done
	stops  []func()        // keepalive stoppers
	closed bool
}

// NewSession returns a session for the streams of l, with fresh secrets.
func NewSession(l Layout) *Session {
	s := &Session{
		secrets:  map[string]string{},
		required: l.Required,
		ready:    make(chan struct{}),
		conns:    map[string]*Conn{},
		taken:    map[string]bool{},
	}

	for _, name := range l.Streams {
		s.secrets[name] = NewSecret()
	}

	return s
}

// Secrets is the operation metadata's MetaFDs: stream name → secret.
func (s *Session) Secrets() map[string]string {
	out := make(map[string]string, len(s.secrets))
	for k, v := range s.secrets {
		out[k] = v
	}

	return out
}

// Connect serves GET /1.0/operations/{id}/websocket?secret=S: 403 for a
// secret of no stream, 400 for a second connection on a stream.
func (s *Session) Connect(r *http.Request, w http.ResponseWriter) error {
	secret := r.FormValue("secret")

	name := ""
	for k, v := range s.secrets {
		if SecretMatches(secret, v) {
			name = k
		}
	}

	if name == "" {
		return api.StatusErrorf(http.StatusForbidden, "permission denied")
	}

	s.mu.Lock()
	if s.closed || s.taken[name] {
		s.mu.Unlock()
		return api.StatusErrorf(http.StatusBadRequest, "websocket %q is already connected", name)
	}

	s.taken[name] = true
	s.mu.Unlock()

	c, err := Upgrade(w, r)
	if err != nil {
		s.mu.Lock()
		s.taken[name] = false
		s.checkReady()
		s.mu.Unlock()

		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		_ = c.Close()
		return nil
	}

	s.conns[name] = c
	s.stops = append(s.stops, KeepAlive(c, PingInterval))
	s.checkReady()

	return nil
}

// checkReady closes ready once every required stream is connected and no
// other connection is half-way: a client that dialled control first must
// find it in place when the command starts (its handler may still be
// finishing the upgrade when the last stream arrives). Called with mu held.
func (s *Session) checkReady() {
	for _, req := range s.required {
		if s.conns[req] == nil {
			return
		}
	}

	for name, taken := range s.taken {
		if taken && s.conns[name] == nil {
			return
		}
	}

	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

// Wait blocks until every required stream is connected, ctx ends (the
// operation was cancelled) or ConnectTimeout passes (ErrConnectTimeout).
func (s *Session) Wait(ctx context.Context) error {
	t := time.NewTimer(ConnectTimeout)
	defer t.Stop()

	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrConnectTimeout
	}
}

// Conn returns the websocket of stream name, nil if it never connected.
func (s *Session) Conn(name string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.conns[name]
}

// Close ends the session: a close frame on every websocket, and no new ones.
func (s *Session) Close(reason string) {
	s.mu.Lock()
	s.closed = true
	stops := s.stops
	conns := s.conns
	s.stops, s.conns = nil, map[string]*Conn{}
	s.mu.Unlock()

	for _, stop := range stops {
		stop()
	}

	for _, c := range conns {
		_ = Close(c, reason)
	}
}
