package ws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// ErrCloseSent is returned by reads and writes after this end has sent a
// close frame.
var ErrCloseSent = websocket.ErrCloseSent

// handshakeTimeout bounds a websocket handshake (the 5.0 client's value).
const handshakeTimeout = 5 * time.Second

// DialConfig is how a client reaches the server: Dial connects the
// transport (a unix socket; nil means TCP), TLS secures it for wss:// URLs,
// Proxy picks an HTTP proxy (nil: none).
type DialConfig struct {
	Dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	TLS   *tls.Config
	Proxy func(*http.Request) (*url.URL, error)
}

// Dialer connects websockets for a client.
type Dialer struct {
	d websocket.Dialer
}

// NewDialer returns a dialer for cfg.
func NewDialer(cfg DialConfig) *Dialer {
	return &Dialer{d: websocket.Dialer{
		NetDialContext:   cfg.Dial,
		TLSClientConfig:  cfg.TLS,
		Proxy:            cfg.Proxy,
		HandshakeTimeout: handshakeTimeout,
	}}
}

// Dial opens the websocket at u (ws:// or wss://). A refused handshake
// names the HTTP status the server answered with.
func (d *Dialer) Dial(ctx context.Context, u string, header http.Header) (*Conn, error) {
	conn, resp, err := d.d.DialContext(ctx, u, header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}

	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			return nil, fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}

		return nil, err
	}

	return conn, nil
}
