package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound what clients can hold. The zero value of a field takes its default.
type Limits struct {
	// HeaderTimeout bounds the TLS handshake and the reading of a request's headers
	// (net/http derives the handshake deadline from it).
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection waiting for its next request.
	IdleTimeout time.Duration
	// MaxConns caps the listener's open connections; further clients wait in the
	// kernel's backlog until one closes.
	MaxConns int
	// MaxConnsPerIP caps one source's connections (an IPv4 address or an IPv6 /64,
	// see Source); more are closed at once, so that one client cannot take every slot
	// of MaxConns.
	MaxConnsPerIP int
	// MaxHeaderBytes caps a request's headers.
	MaxHeaderBytes int
}

// DefaultLimits are the limits of berthd's listeners.
var DefaultLimits = Limits{
	HeaderTimeout:  10 * time.Second,
	IdleTimeout:    60 * time.Second,
	MaxConns:       1024,
	MaxConnsPerIP:  128,
	MaxHeaderBytes: 64 << 10,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.HeaderTimeout > 0 {
		d.HeaderTimeout = l.HeaderTimeout
	}

	if l.IdleTimeout > 0 {
		d.IdleTimeout = l.IdleTimeout
	}

	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}

	if l.MaxConnsPerIP > 0 {
		d.MaxConnsPerIP = l.MaxConnsPerIP
	}

	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}

	return d
}

// Config describes one HTTPS endpoint.
type Config struct {
	Name    string // "https" or "metrics", in logs
	Handler http.Handler
	TLS     *tls.Config
	Log     *slog.Logger
	Limits  Limits
	// ConnContext, when set, adds to each connection's context (the caller's identity
	// is read from the *tls.Conn it is given).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
}

// Endpoint is one HTTPS listener whose address can change while the daemon runs.
type Endpoint struct {
	cfg Config

	mu      sync.Mutex // guards the fields below
	address string     // canonical, "" when stopped
	srv     *http.Server
	ln      *limitedListener
}

// New returns a stopped endpoint.
func New(cfg Config) *Endpoint {
	cfg.Limits = cfg.Limits.withDefaults()
	return &Endpoint{cfg: cfg}
}

// Set starts, moves or stops (address "") the listener. The new address is bound
// before the old listener stops, so a failed bind (address in use, not local) leaves
// the endpoint as it was and returns the error. A stopped listener's connections are
// closed once their requests finished (at most a few seconds), websockets included.
func (e *Endpoint) Set(address string) error {
	canonical, err := Canonical(address, DefaultPort)
	if err != nil {
		return err
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	// The same address again changes nothing, but port 0 asks for a new free port.
	if canonical == e.address && !strings.HasSuffix(canonical, ":0") {
		return nil
	}

	var srv *http.Server
	var ln *limitedListener
	if canonical != "" {
		tcp, err := net.Listen("tcp", canonical)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", canonical, err)
		}

		ln = newLimitedListener(tcp, e.cfg.Limits, e.cfg.Log.With("listener", e.cfg.Name))
		srv = e.newServer()
		go e.serve(srv, ln)
		e.cfg.Log.Info("listening", "listener", e.cfg.Name, "address", tcp.Addr().String())
	}

	oldSrv, oldLn := e.srv, e.ln
	e.address, e.srv, e.ln = canonical, srv, ln
	if oldSrv != nil {
		e.cfg.Log.Info("listener stopped", "listener", e.cfg.Name, "address", oldLn.Addr().String())
		// Not waited for: the request that moved the listener may be on it.
		go stop(oldSrv, oldLn)
	}

	return nil
}

// Addr is the bound address, nil when stopped.
func (e *Endpoint) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln == nil {
		return nil
	}

	return e.ln.Addr()
}

// Close stops the listener and closes its connections now.
func (e *Endpoint) Close() {
	e.mu.Lock()
	srv, ln := e.srv, e.ln
	e.address, e.srv, e.ln = "", nil, nil
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		ln.closeAll()
	}
}

func (e *Endpoint) newServer() *http.Server {
	lim := e.cfg.Limits
	return &http.Server{
		Handler:           e.cfg.Handler,
		ReadHeaderTimeout: lim.HeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnContext:       e.cfg.ConnContext,
		// HTTP/1.1 only: a non-nil empty map keeps net/http from adding h2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		// Handshake failures (plain HTTP, TLS 1.2 clients, scanners) are routine.
		ErrorLog: slog.NewLogLogger(e.cfg.Log.With("listener", e.cfg.Name).Handler(), slog.LevelDebug),
	}
}

func (e *Endpoint) serve(srv *http.Server, ln *limitedListener) {
	err := srv.Serve(tls.NewListener(ln, e.cfg.TLS))
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.cfg.Log.Error("listener failed", "listener", e.cfg.Name, "err", err)
	}
}

// stopGrace is how long a stopped listener's requests may still run.
const stopGrace = 5 * time.Second

func stop(srv *http.Server, ln *limitedListener) {
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = srv.Close()
	// Hijacked connections (websockets) are not the server's any more.
	ln.closeAll()
}

// limitedListener caps connections in total (netutil) and per source address, and
// keeps every open connection so that they can be closed together.
type limitedListener struct {
	net.Listener
	perIP int
	log   *slog.Logger
	limit *LogLimiter

	mu    sync.Mutex
	byIP  map[string]int
	conns map[*Conn]struct{}
}

func newLimitedListener(l net.Listener, lim Limits, log *slog.Logger) *limitedListener {
	return &limitedListener{
		Listener: netutil.LimitListener(l, lim.MaxConns),
		perIP:    lim.MaxConnsPerIP,
		log:      log,
		limit:    NewLogLimiter(time.Minute, 10),
		byIP:     map[string]int{},
		conns:    map[*Conn]struct{}{},
	}
}

// Accept returns the next connection within the per-address cap.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}

		ip := Source(c.RemoteAddr())
		l.mu.Lock()
		if l.byIP[ip] >= l.perIP {
			l.mu.Unlock()
			_ = c.Close()
			if n, ok := l.limit.Allow(); ok {
				l.log.Warn("connection refused: too many from one address", "remote", ip, "limit", l.perIP, "suppressed", n)
			}

			continue
		}

		l.byIP[ip]++
		tc := &Conn{Conn: c, l: l, ip: ip}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *limitedListener) release(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.byIP[c.ip]--
	if l.byIP[c.ip] <= 0 {
		delete(l.byIP, c.ip)
	}
}

func (l *limitedListener) closeAll() {
	l.mu.Lock()
	conns := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()

	for _, c := range conns {
		_ = c.Close()
	}
}

// Conn is an accepted TCP connection (what a *tls.Conn's NetConn returns). Closing it
// cuts the connection under TLS at once, whatever its reader or writer is doing: that
// is how a revoked client is cut off.
type Conn struct {
	net.Conn
	l    *limitedListener
	ip   string
	once sync.Once

	mu     sync.Mutex
	closed bool
	hooks  []func()
}

// Close closes the connection, frees its slots and runs the OnClose hooks once.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.release(c)
		c.mu.Lock()
		c.closed = true
		hooks := c.hooks
		c.hooks = nil
		c.mu.Unlock()
		for _, f := range hooks {
			f()
		}
	})

	return err
}

// OnClose runs f once the connection is closed (at once if it already is).
func (c *Conn) OnClose(f func()) {
	c.mu.Lock()
	if !c.closed {
		c.hooks = append(c.hooks, f)
		c.mu.Unlock()
		return
	}

	c.mu.Unlock()
	f()
}
