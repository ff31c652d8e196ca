// Package events is the daemon's event hub: operation, lifecycle and logging
// events fanned out to /1.0/events websockets and in-process subscribers.
package events

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// DefaultProject is the project a listener watches when it names none, and
// the project shown on events sent without one.
const DefaultProject = "default"

// queueLen bounds each listener's backlog. A listener further behind than
// this is disconnected: the daemon never waits for a slow reader.
const queueLen = 1024

// Server fans events out to listeners.
type Server struct {
	log          *slog.Logger
	pingInterval time.Duration

	mu        sync.Mutex // guards listeners, closed and location
	listeners map[*listener]struct{}
	closed    bool
	location  string // the location of this daemon's own events: "none" unclustered
}

// NewServer returns an empty hub.
func NewServer(log *slog.Logger) *Server {
	return &Server{
		log:          log,
		pingInterval: 15 * time.Second,
		listeners:    make(map[*listener]struct{}),
		location:     "none",
	}
}

// SetLocation sets the location (the cluster member's name) this daemon's own events
// carry from now on.
func (s *Server) SetLocation(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.location = name
}

// listener receives the events matching its filter on exactly one of its
// channels: raw for websockets, evs for in-process subscribers.
type listener struct {
	types       map[string]bool // nil means all types
	project     string
	allProjects bool
	only        map[string]bool // a restricted listener's projects; nil: any

	// localOnly: only this daemon's own events, none relayed from other members (a
	// member's subscription: each member relays the others' events itself, and a relayed
	// event sent on would loop).
	localOnly bool

	// Both are closed (under Server.mu) when the listener is dropped.
	raw  chan []byte
	evs  chan api.Event
	gone bool
}

func (l *listener) wants(ev *api.Event, sentProject string) bool {
	if l.types != nil && !l.types[ev.Type] {
		return false
	}

	if l.only != nil && !l.only[sentProject] {
		return false // nor events of no one project ("")
	}

	return l.allProjects || sentProject == "" || sentProject == l.project
}

// Send delivers an event to every matching listener without blocking.
// An empty project reaches listeners of every project.
func (s *Server) Send(project, eventType string, metadata any) error {
	md, err := json.Marshal(metadata)
	if err != nil {
		return fmt.Errorf("encoding %s event metadata: %w", eventType, err)
	}

	ev := api.Event{
		Type:      eventType,
		Timestamp: time.Now().UTC(),
		Metadata:  md,
		Project:   project,
	}
	if ev.Project == "" {
		ev.Project = DefaultProject
	}

	s.deliver(ev, project, false)
	return nil
}

// Relay delivers an event another cluster member sent (its location set), to every
// matching listener but those of members (localOnly), without blocking.
//
// A member sends the events of no one project with an empty project (see deliver):
// they are delivered here as such, so a restricted listener does not get them, and
// are shown with the default project, as this daemon's own are.
func (s *Server) Relay(ev api.Event) {
	sent := ev.Project
	if ev.Project == "" {
		ev.Project = DefaultProject
	}

	s.deliver(ev, sent, true)
}

// deliver sends ev to the listeners that want it; sentProject is the project it was
// sent for ("" reaches listeners of every project). A local event gets this daemon's
// location.
func (s *Server) deliver(ev api.Event, sentProject string, relayed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !relayed {
		ev.Location = s.location
	}

	data, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encoding event", "type", ev.Type, "err", err)
		return
	}

	// Another member's subscription gets the project the event was sent for, "" for
	// none: shown as "default", an event of no project would reach that project's
	// restricted listeners on the member that relays it.
	memberData := data
	if !relayed && ev.Project != sentProject {
		mev := ev
		mev.Project = sentProject
		memberData, _ = json.Marshal(mev) // encoded once above: cannot fail now
	}

	for l := range s.listeners {
		if (relayed && l.localOnly) || !l.wants(&ev, sentProject) {
			continue
		}

		if l.raw != nil {
			out := data
			if l.localOnly {
				out = memberData
			}

			select {
			case l.raw <- out:
				continue
			default:
			}
		} else {
			select {
			case l.evs <- ev:
				continue
			default:
			}
		}

		s.log.Warn("dropping slow event listener", "project", l.project, "queued", queueLen)
		s.dropLocked(l)
	}
}

// SendLifecycle emits a lifecycle event such as "instance-started" for the
// object at source (an API path). Encoding failures are logged.
func (s *Server) SendLifecycle(project, action, source string, ctx map[string]any) {
	md := api.EventLifecycle{Action: action, Source: source, Context: ctx, Project: project}
	err := s.Send(project, api.EventTypeLifecycle, md)
	if err != nil {
		s.log.Error("sending lifecycle event", "action", action, "source", source, "err", err)
	}
}

// Subscribe registers an in-process listener for the given event types (all
// types when empty) across all projects, of this daemon's own events. The channel is closed by the
// returned cancel function, or by the hub if the subscriber falls more than
// queueLen events behind or the hub is closed.
func (s *Server) Subscribe(types []string) (<-chan api.Event, func()) {
	// This daemon's own events only: what other members do is theirs to act on.
	l := &listener{types: typeSet(types), allProjects: true, localOnly: true, evs: make(chan api.Event, queueLen)}
	s.add(l)
	return l.evs, func() { s.drop(l) }
}

// Close disconnects every listener; later listeners are refused.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for l := range s.listeners {
		s.dropLocked(l)
	}
}

func (s *Server) add(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		l.gone = true
		closeQueue(l)
		return
	}

	s.listeners[l] = struct{}{}
}

func (s *Server) drop(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(l)
}

func (s *Server) dropLocked(l *listener) {
	if l.gone {
		return
	}

	l.gone = true
	delete(s.listeners, l)
	closeQueue(l)
}

func closeQueue(l *listener) {
	if l.raw != nil {
		close(l.raw)
	}

	if l.evs != nil {
		close(l.evs)
	}
}

func typeSet(types []string) map[string]bool {
	if len(types) == 0 {
		return nil
	}

	set := make(map[string]bool, len(types))
	for _, t := range types {
		set[t] = true
	}

	return set
}
