package events

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.Close)
	return s
}

func recv(t *testing.T, ch <-chan api.Event) api.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}

		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for event")
	}

	return api.Event{}
}

func TestSubscribeFiltersTypes(t *testing.T) {
	s := newTestServer(t)
	ch, cancel := s.Subscribe([]string{api.EventTypeLifecycle})
	defer cancel()

	err := s.Send("default", api.EventTypeOperation, map[string]any{"id": "x"})
	if err != nil {
		t.Fatal(err)
	}

	s.SendLifecycle("p1", "instance-started", "/1.0/instances/c1", map[string]any{"k": "v"})

	ev := recv(t, ch)
	if ev.Type != api.EventTypeLifecycle || ev.Project != "p1" || ev.Location != "none" {
		t.Fatalf("unexpected event %+v", ev)
	}

	var md api.EventLifecycle
	err = json.Unmarshal(ev.Metadata, &md)
	if err != nil {
		t.Fatal(err)
	}

	if md.Action != "instance-started" || md.Source != "/1.0/instances/c1" || md.Context["k"] != "v" {
		t.Fatalf("unexpected metadata %+v", md)
	}

	select {
	case ev := <-ch:
		t.Fatalf("unexpected extra event %+v", ev)
	default:
	}

	cancel()
	cancel() // idempotent
	_, ok := <-ch
	if ok {
		t.Fatal("channel still open after cancel")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	s := newTestServer(t)
	ch, cancel := s.Subscribe(nil)
	defer cancel()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < queueLen+10; i++ {
			_ = s.Send("", api.EventTypeLogging, i)
		}
	}()

	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a slow subscriber")
	}

	n := 0
	for range ch {
		n++
	}

	if n != queueLen {
		t.Fatalf("drained %d events, want %d", n, queueLen)
	}

	s.mu.Lock()
	left := len(s.listeners)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d listeners left", left)
	}
}

func TestUnencodableMetadata(t *testing.T) {
	s := newTestServer(t)
	err := s.Send("", api.EventTypeLogging, func() {})
	if err == nil {
		t.Fatal("expected an encoding error")
	}
}

// serve starts an HTTP server whose only handler is s.Handler and reports
// when each handler call returns.
func serve(t *testing.T, s *Server) (url string, returned chan struct{}) {
	t.Helper()
	returned = make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler(w, r)
		returned <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, returned
}

func dial(t *testing.T, base, query string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/1.0/events" + query
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", url, err)
	}

	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitListeners waits until the hub has n listeners, so that events sent
// afterwards are not missed by a connection still registering.
func waitListeners(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		got := len(s.listeners)
		s.mu.Unlock()
		if got == n {
			return
		}

		time.Sleep(5 * time.Millisecond)
	}

	t.Fatalf("hub never reached %d listeners", n)
}

func readEvent(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading event: %v", err)
	}

	if mt != websocket.TextMessage {
		t.Fatalf("message type %d, want text", mt)
	}

	var ev map[string]any
	err = json.Unmarshal(data, &ev)
	if err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}

	return ev
}

func TestWebsocketFiltering(t *testing.T) {
	s := newTestServer(t)
	url, _ := serve(t, s)

	opOnly := dial(t, url, "?type=operation")
	foo := dial(t, url, "?project=foo")
	all := dial(t, url, "?all-projects=true&type=")
	waitListeners(t, s, 3)

	_ = s.Send("", api.EventTypeLifecycle, map[string]any{"n": 1})
	_ = s.Send("default", api.EventTypeOperation, map[string]any{"n": 2})
	_ = s.Send("foo", api.EventTypeOperation, map[string]any{"n": 3})

	seen := func(c *websocket.Conn, count int) []float64 {
		var ns []float64
		for i := 0; i < count; i++ {
			ev := readEvent(t, c)
			if ev["location"] != "none" || ev["timestamp"] == nil {
				t.Fatalf("bad event %v", ev)
			}

			ns = append(ns, ev["metadata"].(map[string]any)["n"].(float64))
		}

		return ns
	}

	check := func(name string, got []float64, want ...float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %v", name, got, want)
		}

		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: got %v, want %v", name, got, want)
			}
		}
	}

	// Per connection, events arrive in order, so reading the expected count
	// and then checking for silence is exact.
	check("type=operation", seen(opOnly, 1), 2)
	check("project=foo", seen(foo, 2), 1, 3)
	check("all-projects", seen(all, 3), 1, 2, 3)

	// An empty project is shown as the default project.
	_ = s.Send("", api.EventTypeOperation, map[string]any{"n": 4})
	ev := readEvent(t, opOnly)
	if ev["project"] != "default" || ev["type"] != "operation" {
		t.Fatalf("bad event %v", ev)
	}
}

func TestWebsocketUnknownTypeIs400(t *testing.T) {
	s := newTestServer(t)
	url, _ := serve(t, s)

	resp, err := http.Get(url + "/1.0/events?type=operation,bogus")
	if err != nil {
		t.Fatal(err)
	}

	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}

	var body api.Response
	err = json.NewDecoder(resp.Body).Decode(&body)
	if err != nil {
		t.Fatal(err)
	}

	if body.Type != api.ErrorResponse || body.ErrorCode != 400 || !strings.Contains(body.Error, "bogus") {
		t.Fatalf("bad body %+v", body)
	}
}

func TestWebsocketPingsAndCleanup(t *testing.T) {
	s := newTestServer(t)
	s.pingInterval = 20 * time.Millisecond
	url, returned := serve(t, s)

	c := dial(t, url, "")
	waitListeners(t, s, 1)

	pings := make(chan struct{}, 100)
	c.SetPingHandler(func(string) error {
		pings <- struct{}{}
		return c.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
	})
	pongs := make(chan struct{}, 100)
	c.SetPongHandler(func(string) error {
		pongs <- struct{}{}
		return nil
	})
	readErr := make(chan error, 1)
	go func() {
		for {
			_, _, err := c.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
		}
	}()

	// Several ping intervals: the server must keep the connection open while
	// the client answers, and must answer the client's own pings.
	for i := 0; i < 5; i++ {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("connection dropped: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no ping from server")
		}
	}

	err := c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-pongs:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not answer a ping")
	}

	// The client goes away: the handler must return and unregister.
	_ = c.Close()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not return after client left")
	}

	waitListeners(t, s, 0)
}

func TestWebsocketClosedOnHubClose(t *testing.T) {
	s := newTestServer(t)
	url, returned := serve(t, s)
	c := dial(t, url, "")
	waitListeners(t, s, 1)

	s.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("want close frame, got %v", err)
	}

	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not return after hub close")
	}
}
