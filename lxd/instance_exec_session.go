package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// wsConnectTimeout is how long exec and console wait for their websockets.
const wsConnectTimeout = 5 * time.Second

// wsPingInterval keeps idle sessions alive through proxies, as LXD.
const wsPingInterval = 10 * time.Second

var errWSTimeout = errors.New("Timed out waiting for websockets to connect") //nolint:staticcheck // LXD's text

// wsSession holds the websockets of one exec or console operation: one per
// fd ("0", "1", "2", "control"), each selected by its own secret.
type wsSession struct {
	secrets  map[string]string
	required []string
	ready    chan struct{} // closed once every required fd is connected

	mu     sync.Mutex
	conns  map[string]*ws.Conn
	taken  map[string]bool // fds with a connection in progress or done
	stops  []func()        // keepalive stoppers
	closed bool
}

func newWSSession(fds []string, required []string) *wsSession {
	s := &wsSession{
		secrets:  map[string]string{},
		required: required,
		ready:    make(chan struct{}),
		conns:    map[string]*ws.Conn{},
		taken:    map[string]bool{},
	}

	for _, fd := range fds {
		s.secrets[fd] = operations.NewSecret()
	}

	return s
}

// fds is the operation metadata's "fds": fd → secret.
func (s *wsSession) fds() map[string]string {
	out := make(map[string]string, len(s.secrets))
	for k, v := range s.secrets {
		out[k] = v
	}

	return out
}

// connect serves GET /1.0/operations/{id}/websocket?secret=S: 403 for a
// secret of no fd, 400 for a second connection on an fd.
func (s *wsSession) connect(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error {
	secret := r.FormValue("secret")

	fd := ""
	for k, v := range s.secrets {
		if operations.SecretMatches(secret, v) {
			fd = k
		}
	}

	if fd == "" {
		return api.StatusErrorf(http.StatusForbidden, "permission denied")
	}

	s.mu.Lock()
	if s.closed || s.taken[fd] {
		s.mu.Unlock()
		return api.StatusErrorf(http.StatusBadRequest, "websocket %q is already connected", fd)
	}

	s.taken[fd] = true
	s.mu.Unlock()

	c, err := ws.Upgrade(w, r)
	if err != nil {
		s.mu.Lock()
		s.taken[fd] = false
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

	s.conns[fd] = c
	s.stops = append(s.stops, ws.KeepAlive(c, wsPingInterval))
	s.checkReady()

	return nil
}

// checkReady closes ready once every required fd is connected and no other
// connection is half-way: a client that dialled control first must find it
// in place when the command starts (its handler may still be finishing the
// upgrade when the last stream arrives). Called with mu held.
func (s *wsSession) checkReady() {
	for _, req := range s.required {
		if s.conns[req] == nil {
			return
		}
	}

	for fd, taken := range s.taken {
		if taken && s.conns[fd] == nil {
			return
		}
	}

	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

// wait blocks until every required fd is connected, ctx ends (the
// operation was cancelled) or the timeout passes.
func (s *wsSession) wait(ctx context.Context) error {
	t := time.NewTimer(wsConnectTimeout)
	defer t.Stop()

	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errWSTimeout
	}
}

// conn returns the websocket of fd, nil if it never connected.
func (s *wsSession) conn(fd string) *ws.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.conns[fd]
}

// close ends the session: a close frame on every websocket, and no new ones.
func (s *wsSession) close(reason string) {
	s.mu.Lock()
	s.closed = true
	stops := s.stops
	conns := s.conns
	s.stops, s.conns = nil, map[string]*ws.Conn{}
	s.mu.Unlock()

	for _, stop := range stops {
		stop()
	}

	for _, c := range conns {
		_ = ws.Close(c, reason)
	}
}
