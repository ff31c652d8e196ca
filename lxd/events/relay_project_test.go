package events

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// rawListener adds a websocket-like listener to s.
func rawListener(s *Server, l *listener) chan []byte {
	l.raw = make(chan []byte, queueLen)
	s.add(l)
	return l.raw
}

func take(t *testing.T, ch chan []byte) (api.Event, bool) {
	t.Helper()
	select {
	case data := <-ch:
		var ev api.Event
		err := json.Unmarshal(data, &ev)
		if err != nil {
			t.Fatal(err)
		}

		return ev, true
	case <-time.After(200 * time.Millisecond):
		return api.Event{}, false
	}
}

// An event of no one project on member B (a join or certificate token, a cluster
// task) must not reach a certificate restricted to "default" on member A through the
// event relay, as it does not on B itself (issue 16 review).
func TestRelayedEventOfNoProjectSkipsRestricted(t *testing.T) {
	b := NewServer(slog.Default())
	a := NewServer(slog.Default())
	toA := rawListener(b, &listener{allProjects: true, localOnly: true}) // A's subscription to B
	restricted := rawListener(a, &listener{project: "default", only: map[string]bool{"default": true}})
	admin := rawListener(a, &listener{project: "default"})
	onB := rawListener(b, &listener{project: "default", only: map[string]bool{"default": true}})

	for _, proj := range []string{"", "default"} {
		err := b.Send(proj, api.EventTypeOperation, map[string]string{"description": "Certificate add token"})
		if err != nil {
			t.Fatal(err)
		}

		_, got := take(t, onB)
		if got != (proj != "") {
			t.Fatalf("project %q: B's own restricted listener got it: %v", proj, got)
		}

		ev, ok := take(t, toA)
		if !ok {
			t.Fatalf("project %q: the member subscription got nothing", proj)
		}

		a.Relay(ev)
		ev, ok = take(t, admin)
		if !ok || ev.Project != DefaultProject {
			t.Fatalf("project %q: A's administrator got %+v %v", proj, ev, ok)
		}

		_, got = take(t, restricted)
		if got != (proj != "") { // the positive control: a default project event reaches it
			t.Fatalf("project %q: A's restricted listener got it: %v", proj, got)
		}
	}
}
