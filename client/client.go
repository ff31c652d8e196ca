package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/ws"
)

// DefaultSocket is where berthd listens when neither $BERTH_SOCKET nor
// $BERTH_DIR is set.
const DefaultSocket = "/var/lib/berth/unix.socket"

// Version is the client's version, sent in the User-Agent header.
const Version = "0.1.0"

// unixURL is the URL prefix of every request over the unix socket; the socket
// makes the host moot, but LXD servers expect "unix.socket".
const unixURL = "http://unix.socket"

// DefaultSocketPath returns $BERTH_SOCKET if set, else $BERTH_DIR/unix.socket,
// else DefaultSocket.
func DefaultSocketPath() string {
	p := os.Getenv("BERTH_SOCKET")
	if p != "" {
		return p
	}

	dir := os.Getenv("BERTH_DIR")
	if dir != "" {
		return filepath.Join(dir, "unix.socket")
	}

	return DefaultSocket
}

// Client is a connection to berthd (or to any LXD API 1.0 server). It is safe
// for concurrent use.
type Client struct {
	socketPath string      // empty over HTTPS
	unix       *unixDialer // nil over HTTPS
	served     struct {    // ServedByBerthd's answer, asked once
		once   sync.Once
		berthd bool
	}
	baseURL   string // http://unix.socket or https://host:port, no trailing slash
	wsURL     string // the same for websockets: ws://unix.socket or wss://host:port
	http      *http.Client
	ws        *ws.Dialer
	userAgent string
}

// Connect returns a client for the daemon listening on socketPath (an empty
// path means DefaultSocketPath()). It checks that the socket exists but sends
// no request.
func Connect(socketPath string) (*Client, error) {
	if socketPath == "" {
		socketPath = DefaultSocketPath()
	}

	fi, err := os.Stat(socketPath)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}

		return nil, fmt.Errorf("connecting to berthd at %s (is it running?): %w", socketPath, err)
	}

	if fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("connecting to berthd: %s is not a unix socket", socketPath)
	}

	d := &unixDialer{path: socketPath}
	c := &Client{
		socketPath: socketPath,
		unix:       d,
		baseURL:    unixURL,
		wsURL:      "ws://unix.socket",
		// A command's requests share a connection (keep-alive), as LXD's server allows
		// and berthd's does: a connection per request costs a connect and an accept each.
		http: &http.Client{Transport: &http.Transport{
			DialContext:         d.dial,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		}},
		ws:        ws.NewDialer(ws.DialConfig{Dial: d.dial}),
		userAgent: "berth/" + Version,
	}

	return c, nil
}

// SocketPath returns the path of the socket the client talks to (empty over
// HTTPS).
func (c *Client) SocketPath() string { return c.socketPath }

// URL returns the server's address: https://host:port, or unix:// and the
// socket's path.
func (c *Client) URL() string {
	if c.socketPath != "" {
		return "unix://" + c.socketPath
	}

	return c.baseURL
}

// unwrapURLError drops net/http's `Get "http://unix.socket/...":` prefix, which
// only adds noise to a message shown to users.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}

	return err
}
