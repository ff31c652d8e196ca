package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// EventListener is a connection to the /1.0/events websocket. Events are
// handed to the handlers registered with AddHandler, from one goroutine.
type EventListener struct {
	conn *ws.Conn
	done chan struct{}

	mu       sync.Mutex
	handlers []*EventTarget
	closing  bool
	err      error
}

// EventTarget is a registered event handler, used to remove it.
type EventTarget struct {
	types []string
	fn    func(api.Event)
}

// GetEvents connects to the event stream (all event types). ctx bounds the
// connection handshake only; the listener lives until Disconnect or until the
// server closes the stream.
func (c *Client) GetEvents(ctx context.Context) (*EventListener, error) {
	return c.getEvents(ctx)
}

func (c *Client) getEvents(ctx context.Context, types ...string) (*EventListener, error) {
	u := c.wsURL + "/1.0/events"
	if len(types) > 0 {
		u += "?type=" + url.QueryEscape(strings.Join(types, ","))
	}

	conn, err := c.ws.Dial(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to the event stream: %w", err)
	}

	// One event is a small JSON object; a server sending more is not trusted with our memory.
	conn.SetReadLimit(maxEvent)
	l := &EventListener{conn: conn, done: make(chan struct{})}
	go l.readLoop()

	return l, nil
}

// AddHandler registers fn for events of the given types (none = all types).
// fn runs on the listener's reader goroutine and must not block.
func (l *EventListener) AddHandler(types []string, fn func(api.Event)) *EventTarget {
	t := &EventTarget{types: types, fn: fn}

	l.mu.Lock()
	l.handlers = append(l.handlers, t)
	l.mu.Unlock()

	return t
}

// RemoveHandler unregisters a handler; fn may still run once if an event was
// being dispatched concurrently.
func (l *EventListener) RemoveHandler(t *EventTarget) {
	l.mu.Lock()
	l.handlers = slices.DeleteFunc(l.handlers, func(h *EventTarget) bool { return h == t })
	l.mu.Unlock()
}

// Done is closed when the listener has stopped.
func (l *EventListener) Done() <-chan struct{} { return l.done }

// Err returns why the listener stopped: nil after Disconnect, else the read
// error. It is only meaningful once Done is closed.
func (l *EventListener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.err
}

// Disconnect closes the stream and waits for the reader to stop. It is safe
// on a nil listener and may be called more than once.
func (l *EventListener) Disconnect() {
	if l == nil {
		return
	}

	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()

	_ = l.conn.Close()
	<-l.done
}

func (l *EventListener) readLoop() {
	defer close(l.done)

	for {
		_, data, err := l.conn.ReadMessage()
		if err != nil {
			l.mu.Lock()
			if !l.closing {
				l.err = fmt.Errorf("reading the event stream: %w", err)
				if errors.Is(err, ws.ErrCloseSent) {
					l.err = nil
				}
			}
			l.mu.Unlock()

			return
		}

		ev := api.Event{}
		err = json.Unmarshal(data, &ev)
		if err != nil || ev.Type == "" {
			// Like LXD's client: skip what cannot be an event.
			continue
		}

		l.mu.Lock()
		handlers := slices.Clone(l.handlers)
		l.mu.Unlock()

		for _, h := range handlers {
			if len(h.types) == 0 || slices.Contains(h.types, ev.Type) {
				h.fn(ev)
			}
		}
	}
}

// maxEvent bounds one event message.
const maxEvent = 4 << 20
