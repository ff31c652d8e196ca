package trust

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
)

// Audit logs each authorised mutating request once, with its caller and outcome, and
// refused callers, rate-limited per source: a scanner must not flood the log, nor
// silence the lines about other sources.
type Audit struct {
	log     *slog.Logger
	refused *listener.SourceLogLimiter
}

// Bounds of the audit log.
const (
	refusedPerMinute = 20   // refusal lines per source and minute
	refusedSources   = 1024 // sources tracked apart; the rest share one limit
	maxLoggedPath    = 256  // bytes of a request's path in a line
)

// NewAudit returns an audit log writing to log.
func NewAudit(log *slog.Logger) *Audit {
	return &Audit{log: log.With("audit", true), refused: listener.NewSourceLogLimiter(time.Minute, refusedPerMinute, refusedSources)}
}

// Mutating reports whether a request changes something (everything but GET and HEAD).
func Mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// Request records a finished mutating request (a nil Audit records nothing).
func (a *Audit) Request(c Caller, r *http.Request, status int) {
	if a == nil {
		return
	}

	a.log.Info("api request", callerAttrs(c, r, slog.String("method", r.Method), PathAttr(r), slog.Int("status", status))...)
}

// Refused records a caller refused for lack of trust, or a failed token.
func (a *Audit) Refused(c Caller, r *http.Request, why string) {
	if a == nil {
		return
	}

	n, ok := a.refused.Allow(source(c, r))
	if !ok {
		return
	}

	attrs := callerAttrs(c, r, slog.String("method", r.Method), PathAttr(r), slog.String("reason", why))
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}

	a.log.Warn("authentication failed", attrs...)
}

func callerAttrs(c Caller, r *http.Request, extra ...any) []any {
	attrs := []any{slog.String("caller", c.String())}
	switch c.Via {
	case ViaUnix:
		attrs = append(attrs, slog.Int("uid", c.UID), slog.Int("pid", c.PID))
	case ViaTLS:
		attrs = append(attrs, slog.String("remote", r.RemoteAddr))
		if c.Fingerprint != "" {
			attrs = append(attrs, slog.String("fingerprint", c.Fingerprint))
		}

		if c.Trusted {
			attrs = append(attrs, slog.String("name", c.Cert.Name))
		}
	}

	return append(attrs, extra...)
}

// PathAttr is the request's path, cut to maxLoggedPath bytes with its length when longer.
func PathAttr(r *http.Request) slog.Attr {
	p := r.URL.Path
	if len(p) <= maxLoggedPath {
		return slog.String("path", p)
	}

	return slog.Group("", slog.String("path", p[:maxLoggedPath]+"…"), slog.Int("path_length", len(p)))
}

// source is what the refusal limit counts a caller as: its address (IPv6 by /64), or
// its uid on the unix socket.
func source(c Caller, r *http.Request) string {
	if c.Via == ViaUnix {
		return "uid " + itoa(c.UID)
	}

	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}

	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}

	return listener.SourceOfIP(ip)
}
