package forward

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// The headers of a relayed request.
const (
	HeaderForwarded = "X-Berth-Forwarded"
	HeaderCaller    = "X-Berth-Caller"
)

// CallerAdmin is X-Berth-Caller for a caller with every right (the unix socket).
const CallerAdmin = "admin"

// CallerUntrusted is X-Berth-Caller for a caller without a trusted certificate (it may
// still reach what anyone may, such as an operation websocket with its secret).
const CallerUntrusted = "untrusted"

// DialTimeout bounds reaching a member: the TCP connection and the TLS handshake each.
// A blackholed member (packets dropped) then costs this long, not the minutes of a TCP
// timeout.
const DialTimeout = 2 * time.Second

// Member is a cluster member as forwarding needs it.
type Member struct {
	ID      int64
	Name    string
	Address string // host:port of its HTTPS API
	Online  bool
}

// String names the member in errors: "n2 (10.251.0.2:8443)".
func (m Member) String() string {
	return m.Name + " (" + m.Address + ")"
}

// Sanitize removes the relay headers from r unless it came from a member: nobody else
// may claim to be relaying, nor speak for another caller.
func Sanitize(r *http.Request, fromMember bool) {
	if fromMember {
		return
	}

	r.Header.Del(HeaderForwarded)
	r.Header.Del(HeaderCaller)
}

// IsForwarded reports whether r was relayed by a member (after Sanitize): it is then
// answered locally, for this member's own objects only.
func IsForwarded(r *http.Request) bool {
	return r.Header.Get(HeaderForwarded) != ""
}

// UnreachableError is the error of a member that could not be reached.
type UnreachableError struct {
	Member Member
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("member %s is unreachable: %v", e.Member, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// OfflineError is the error of a member the cluster considers offline (no heartbeat
// within the offline threshold): it is not even tried.
type OfflineError struct{ Member Member }

func (e *OfflineError) Error() string {
	return fmt.Sprintf("member %s is offline", e.Member)
}

// Forwarder relays requests to members. Its transport keeps connections to members
// alive, so a relayed request usually costs one round trip, no handshake.
type Forwarder struct {
	origin    string          // this member's name, sent in X-Berth-Forwarded
	transport *http.Transport // HeaderTimeout on every call but long polls
	streaming *http.Transport // the same connections' settings, no HeaderTimeout
	tls       *tls.Config
	log       *slog.Logger

	// OnOperation is told of each operation a member created for a relayed request
	// (its id from the answer's Location), so the operation's URLs can be routed to
	// that member. May be nil.
	OnOperation func(id string, m Member)
}

// New returns a forwarder for member origin that reaches members with tlsConfig (the
// cluster certificate as client certificate, the server's pinned).
func New(origin string, tlsConfig *tls.Config, log *slog.Logger) *Forwarder {
	return newForwarder(origin, tlsConfig, log, HeaderTimeout)
}

func newForwarder(origin string, tlsConfig *tls.Config, log *slog.Logger, headerTimeout time.Duration) *Forwarder {
	tr := &http.Transport{
		DialContext:         memberDialer().DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: DialTimeout,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		// HTTP/1.1 only: upgrades (websockets) need it, and members talk over a LAN.
		ForceAttemptHTTP2: false,
	}

	streaming := tr.Clone()
	tr.ResponseHeaderTimeout = headerTimeout
	return &Forwarder{origin: origin, transport: tr, streaming: streaming, tls: tlsConfig, log: log}
}

// Close drops the idle connections to members.
func (f *Forwarder) Close() {
	f.transport.CloseIdleConnections()
	f.streaming.CloseIdleConnections()
}

// Client is an HTTP client that reaches members (for calls of the daemon's own).
func (f *Forwarder) Client() *http.Client { return &http.Client{Transport: f.transport} }

// Origin is this member's name.
func (f *Forwarder) Origin() string { return f.origin }

// Forward relays r to member m with caller as X-Berth-Caller and copies the answer to
// w: status, headers (but hop-by-hop ones) and body, streamed both ways. A websocket
// upgrade is relayed as such: once the member switched protocols, bytes flow both ways
// until either side closes. A member that cannot be reached is a 503 naming it, within
// DialTimeout.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, m Member, caller string) {
	if !m.Online {
		WriteError(w, http.StatusServiceUnavailable, (&OfflineError{Member: m}).Error())
		return
	}

	target := &url.URL{Scheme: "https", Host: m.Address}
	tr := f.transport
	if longPoll(r) {
		tr = f.streaming
	}

	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = m.Address
			pr.Out.Header.Set(HeaderForwarded, f.origin)
			pr.Out.Header.Set(HeaderCaller, caller)
		},
		Transport: tr,
		// Events, logs and exports stream: pass each piece on at once.
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			f.noteOperation(resp, m)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(r.Context().Err(), context.Canceled) {
				return // the client went away
			}

			f.log.Warn("forwarding to member failed", "member", m.Name, "address", m.Address, "path", r.URL.Path, "err", err)
			WriteError(w, http.StatusServiceUnavailable, (&UnreachableError{Member: m, Err: err}).Error())
		},
		ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}

	proxy.ServeHTTP(w, r)
}

// noteOperation passes on the id of an operation the member created (a 202's
// Location: /1.0/operations/{id}).
func (f *Forwarder) noteOperation(resp *http.Response, m Member) {
	if f.OnOperation == nil {
		return
	}

	id, ok := OperationID(resp.Header.Get("Location"))
	if ok {
		f.OnOperation(id, m)
	}
}

// OperationID is the id of an operation URL (/1.0/operations/{id}[/...]).
func OperationID(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "/1.0/operations/")
	if !ok {
		return "", false
	}

	id, _, _ := strings.Cut(rest, "/")
	id, _, _ = strings.Cut(id, "?")
	return id, id != ""
}

// WriteError writes an error in the API's envelope, as the daemon's own errors are.
func WriteError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Response{Type: api.ErrorResponse, ErrorCode: code, Error: msg})
}
