package testdaemon

import (
	"bytes"
	"context"
	"fmt"
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

		if strings.HasPrefix(r.URL.Path, "/1.0/operations/") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			tunnel(w, r, daemon)
			return
		}

		rp.ServeHTTP(w, r)
	})}

	go func() { _ = p.srv.Serve(l) }()

	return p, nil
}

// tunnel passes an operation's websocket to the daemon and back, each direction on its
// own: everything the daemon sends reaches the client, even when the client's last
// frames find the daemon gone (it closes an exec's streams as soon as the command's
// output is sent). httputil.ReverseProxy ends both directions at the first error of
// either, which dropped a short command's output now and then.
func tunnel(w http.ResponseWriter, r *http.Request, daemon string) {
	back, err := net.Dial("unix", daemon)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}

	defer func() { _ = back.Close() }()

	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}

	conn, buffered, err := hj.Hijack()
	if err != nil {
		return
	}

	defer func() { _ = conn.Close() }()

	_, err = fmt.Fprintf(back, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.URL.RequestURI(), r.Host)
	if err == nil {
		err = r.Header.Write(back)
	}

	if err == nil {
		_, err = io.WriteString(back, "\r\n")
	}

	if err != nil {
		return
	}

	go func() {
		_, _ = io.Copy(back, io.MultiReader(buffered.Reader, conn))
		if uc, ok := back.(*net.UnixConn); ok {
			_ = uc.CloseWrite()
		}
	}()

	_, _ = io.Copy(conn, back)
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
