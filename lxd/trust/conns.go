package trust

import (
	"sync"

	"github.com/berth-dev/berth/lxd/listener"
)

// conns keeps the open HTTPS connections of each trusted certificate, so that a
// removed (or changed) certificate's connections are closed at once: its keep-alive
// connections and its long-lived websockets (events, exec, console) alike.
type conns struct {
	mu   sync.Mutex
	byFP map[string]map[*listener.Conn]struct{}
	fpOf map[*listener.Conn]string
}

func newConns() *conns {
	return &conns{byFP: map[string]map[*listener.Conn]struct{}{}, fpOf: map[*listener.Conn]string{}}
}

// bind records c as a connection of fp, then checks fp is still trusted: either that
// check sees a removal, or the removal's cut sees c. It reports whether fp is trusted
// (c is closed when not).
func (t *conns) bind(fp string, c *listener.Conn, s *Store) bool {
	t.mu.Lock()
	_, known := t.fpOf[c]
	if !known {
		t.fpOf[c] = fp
		set := t.byFP[fp]
		if set == nil {
			set = map[*listener.Conn]struct{}{}
			t.byFP[fp] = set
		}

		set[c] = struct{}{}
	}
	t.mu.Unlock()

	if !known {
		c.OnClose(func() { t.forget(c) })
	}

	_, ok := s.Lookup(fp)
	if !ok {
		_ = c.Close()
	}

	return ok
}

func (t *conns) forget(c *listener.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fp, ok := t.fpOf[c]
	if !ok {
		return
	}

	delete(t.fpOf, c)
	delete(t.byFP[fp], c)
	if len(t.byFP[fp]) == 0 {
		delete(t.byFP, fp)
	}
}

// cut closes every connection of fp but spare and returns how many it closed. spare is
// the connection of the request that removes or changes the certificate, when the
// client does that to itself: closing it would lose the response. It is not a
// websocket, and its next request is authenticated afresh, so it gains nothing.
func (t *conns) cut(fp string, spare *listener.Conn) int {
	t.mu.Lock()
	list := make([]*listener.Conn, 0, len(t.byFP[fp]))
	for c := range t.byFP[fp] {
		if c != spare {
			list = append(list, c)
		}
	}
	t.mu.Unlock()

	for _, c := range list {
		_ = c.Close() // runs forget
	}

	return len(list)
}

// count is the number of open connections of fp (tests).
func (t *conns) count(fp string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byFP[fp])
}
