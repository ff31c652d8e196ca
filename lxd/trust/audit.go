package trust

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
)

// Audit logs each mutating request once, with its caller and outcome, and refused
// callers (rate-limited: a scanner must not flood the log).
type Audit struct {
	log     *slog.Logger
	refused *listener.LogLimiter
}

// NewAudit returns an audit log writing to log.
func NewAudit(log *slog.Logger) *Audit {
	return &Audit{log: log.With("audit", true), refused: listener.NewLogLimiter(time.Minute, 20)}
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

	a.log.Info("api request", callerAttrs(c, r, slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status))...)
}

// Refused records a caller refused for lack of trust, or a failed token.
func (a *Audit) Refused(c Caller, r *http.Request, why string) {
	if a == nil {
		return
	}

	n, ok := a.refused.Allow()
	if !ok {
		return
	}

	attrs := callerAttrs(c, r, slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("reason", why))
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
