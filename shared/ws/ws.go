// Package ws is the exec and console stream protocol (protocol.go) and the
// websocket plumbing both ends of it use: berthd's exec and console handlers
// and the Go client, which dials through Dialer (dial.go). It is the only
// gorilla/websocket importer besides lxd/events, so callers use the Conn
// alias instead of importing gorilla.
package ws

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// BufferSize is the largest payload carried by one binary message; the LXD
// client reads at most this much per message.
const BufferSize = 128 * 1024

// Conn is a websocket connection.
type Conn = websocket.Conn

// upgrader accepts any Origin: the unix socket is trusted and HTTPS callers
// are authenticated by client certificate before reaching a handler.
var upgrader = websocket.Upgrader{
	ReadBufferSize:   BufferSize,
	WriteBufferSize:  BufferSize,
	HandshakeTimeout: 5 * time.Second,
	CheckOrigin:      func(*http.Request) bool { return true },
}

// Upgrade turns an HTTP request into a websocket connection. On failure the
// upgrader has already written an HTTP error to w.
func Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	return upgrader.Upgrade(w, r, nil)
}

// controlTimeout bounds control frames (ping, close) and control messages
// so a dead peer cannot block the caller.
const controlTimeout = 5 * time.Second

// closeTimeout bounds a client's close frame: a client ending a session
// must not hang on a dead server.
const closeTimeout = time.Second

// KeepAlive sends a ping every interval until the returned stop function is
// called or a ping fails. Pongs are handled by whoever reads from conn.
func KeepAlive(conn *Conn, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(controlTimeout))
				if err != nil {
					return
				}
			}
		}
	}()

	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-stopped
	}
}

// SendClose writes a normal close frame with reason, waiting at most
// timeout, and leaves the connection open.
func SendClose(conn *Conn, reason string, timeout time.Duration) error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	return conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout))
}

// Close sends a normal close frame with reason and closes the connection.
func Close(conn *Conn, reason string) error {
	_ = SendClose(conn, reason, controlTimeout)
	return conn.Close()
}

// SendBarrier writes the empty text message that marks the end of a stream.
// Not safe to call concurrently with other data writes on conn.
func SendBarrier(conn *Conn) error {
	return conn.WriteMessage(websocket.TextMessage, nil)
}
