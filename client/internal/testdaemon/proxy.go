package testdaemon

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Request is one request the daemon received.
type Request struct {
	Method string
	Path   string // escaped path plus query
	Header http.Header
	Body   []byte
}

// proxy passes every request to the daemon unchanged (websockets included)
// and records it; it can also play a daemon without events, and drop event
// listeners as a crashing daemon would.
type proxy struct {
	socket string
	srv    *http.Server
	l      net.Listener

	mu       sync.Mutex
	requests []Request
	events   []context.CancelFunc
	noEvents bool
}

// BrokenPath answers 502 with an HTML body, as a failing proxy would.
const BrokenPath = "/1.0/broken"

// maxRecordedBody bounds what is kept of a request body (image uploads).
const maxRecordedBody = 1 << 20

func startProxy(socket, daemon string) (*proxy, error) {
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}

	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "unix.socket"})
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", daemon)
		}},
		FlushInterval: -1,
	}

	p := &proxy{socket: socket, l: l}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.record(r)

		// A proxy in front of a daemon failing, for the client's handling of
		// an error that is not the API's JSON.
		if r.URL.Path == BrokenPath {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>oops</html>")

			return
		}

		if strings.HasPrefix(r.URL.Path, "/1.0/events") {
			p.mu.Lock()
			refuse := p.noEvents
			ctx, cancel := context.WithCancel(r.Context())
			p.events = append(p.events, cancel)
			p.mu.Unlock()

			if refuse {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `{"type":"error","error":"not found","error_code":404}`)

				return
			}

			r = r.WithContext(ctx)
		}

		rp.ServeHTTP(w, r)
	})}

	go func() { _ = p.srv.Serve(l) }()

	return p, nil
}

// record keeps the request, and the start of its body for the tests.
func (p *proxy) record(r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	p.requests = append(p.requests, Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
}

func (p *proxy) close() {
	_ = p.srv.Close()
}

// Requests returns the requests received so far.
func (p *proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()

	return append([]Request(nil), p.requests...)
}

// SetNoEvents makes /1.0/events answer 404, as a daemon without events,
// forcing clients to poll.
func (p *proxy) SetNoEvents(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.noEvents = v
}

// DropEventListeners cuts every events websocket, as a crashing daemon would.
func (p *proxy) DropEventListeners() {
	p.mu.Lock()
	defer p.mu.Unlock()

	for _, cancel := range p.events {
		cancel()
	}
}
