package events

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// writeTimeout bounds each write so a stalled client is dropped, not waited for.
const writeTimeout = 10 * time.Second

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 5 * time.Second,
	CheckOrigin:      func(*http.Request) bool { return true },
}

var knownTypes = map[string]bool{
	api.EventTypeLogging:   true,
	api.EventTypeOperation: true,
	api.EventTypeLifecycle: true,
}

// WebsocketListener is a validated /1.0/events request, ready to be served.
type WebsocketListener struct {
	s *Server
	l *listener
}

// NewWebsocketListener validates the query of a /1.0/events request
// (type=, project=, all-projects=) before anything is written, so that the
// caller can still answer with an error. Unknown types give a 400 StatusError.
func (s *Server) NewWebsocketListener(r *http.Request) (*WebsocketListener, error) {
	q := r.URL.Query()
	var types []string
	for _, t := range strings.Split(q.Get("type"), ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}

		if !knownTypes[t] {
			return nil, api.StatusErrorf(http.StatusBadRequest, "unknown event type %q", t)
		}

		types = append(types, t)
	}

	project := q.Get("project")
	if project == "" {
		project = DefaultProject
	}

	l := &listener{
		types:       typeSet(types),
		project:     project,
		allProjects: isTrue(q.Get("all-projects")),
		raw:         make(chan []byte, queueLen),
	}

	return &WebsocketListener{s: s, l: l}, nil
}

// Restrict confines the listener to the events of projects (a restricted certificate's):
// events of other projects and of no one project are not sent to it. Call it before
// Serve.
func (wl *WebsocketListener) Restrict(projects []string) {
	wl.l.only = make(map[string]bool, len(projects))
	for _, p := range projects {
		wl.l.only[p] = true
	}
}

// LocalOnly makes the listener a cluster member's subscription: it gets this daemon's
// own events only, none relayed from other members. Call it before Serve.
func (wl *WebsocketListener) LocalOnly() {
	wl.l.localOnly = true
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}

	return false
}

// Serve upgrades the connection and streams events until the client goes
// away, the listener falls too far behind, or the hub closes. It returns
// after every goroutine it started has exited. A failed upgrade has already
// been answered by the upgrader.
func (wl *WebsocketListener) Serve(w http.ResponseWriter, r *http.Request) error {
	// Listening starts before the upgrade completes: a client that saw the upgrade
	// (another member's event relay, which then lets requests through to this member)
	// misses no event sent after it. Events before the upgrade wait in the listener.
	wl.s.add(wl.l)
	defer wl.s.drop(wl.l)

	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return err
	}

	defer func() { _ = conn.Close() }()

	// A peer that answers neither pings nor anything else is dead.
	readWait := 3 * wl.s.pingInterval
	_ = conn.SetReadDeadline(time.Now().Add(readWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(readWait))
	})

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			// The client may send events back; they are ignored.
			_, _, err := conn.ReadMessage()
			if err != nil {
				return
			}

			_ = conn.SetReadDeadline(time.Now().Add(readWait))
		}
	}()

	wl.writeLoop(conn, readerDone)

	// Unblock the reader (if the writer ended first) and wait for it.
	_ = conn.Close()
	<-readerDone
	return nil
}

// writeLoop is the connection's only data writer.
func (wl *WebsocketListener) writeLoop(conn *websocket.Conn, readerDone chan struct{}) {
	ticker := time.NewTicker(wl.s.pingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-readerDone:
			return
		case data, ok := <-wl.l.raw:
			if !ok {
				msg := websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "event listener dropped")
				_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				return
			}

			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			err := conn.WriteMessage(websocket.TextMessage, data)
			if err != nil {
				return
			}

		case <-ticker.C:
			err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
			if err != nil {
				return
			}
		}
	}
}

// Handler serves /1.0/events directly, writing a JSON error envelope when the
// query is invalid. Daemon endpoints may instead use NewWebsocketListener and
// Serve inside a manual response.
func (s *Server) Handler(w http.ResponseWriter, r *http.Request) {
	wl, err := s.NewWebsocketListener(r)
	if err != nil {
		code := api.StatusCodeOf(err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(api.Response{
			Type:      api.ErrorResponse,
			ErrorCode: code,
			Error:     err.Error(),
		})
		return
	}

	err = wl.Serve(w, r)
	if err != nil {
		s.log.Debug("serving events websocket", "err", err)
	}
}
