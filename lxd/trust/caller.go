package trust

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// Via is how a caller reached the daemon.
type Via int

// The ways in.
const (
	ViaUnknown Via = iota // no connection information: trusted with nothing
	ViaUnix
	ViaTLS
)

// Caller is who sent a request.
type Caller struct {
	Via Via

	// Unix socket: the peer's credentials (SO_PEERCRED), -1 when unknown.
	UID, PID int

	// HTTPS: the fingerprint of the client's certificate ("" when it sent none) and,
	// when trusted, the certificate's record.
	Fingerprint string
	Trusted     bool
	Cert        Entry

	// Member: the client certificate is the cluster certificate, which only cluster
	// members hold (issue 16). A member is fully trusted and may call /internal/.
	Member bool
}

// Admin reports whether the caller may do everything: the unix socket, or a trusted
// client certificate that is not restricted.
func (c Caller) Admin() bool {
	switch c.Via {
	case ViaUnix:
		return true
	case ViaTLS:
		return c.Member || (c.Trusted && c.Cert.Type == api.CertificateTypeClient && !c.Cert.Restricted)
	}

	return false
}

// Restricted reports whether the caller holds a restricted client certificate: it may
// use only the projects of MayUse.
func (c Caller) Restricted() bool {
	return c.Via == ViaTLS && c.Trusted && c.Cert.Type == api.CertificateTypeClient && c.Cert.Restricted
}

// MayUse reports whether the caller may see and touch the project: an administrator
// any, a restricted certificate its own.
func (c Caller) MayUse(proj string) bool {
	return c.Admin() || (c.Restricted() && slices.Contains(c.Cert.Projects, proj))
}

// Metrics reports whether the caller may scrape /1.0/metrics with authentication on:
// an administrator or a trusted metrics certificate.
func (c Caller) Metrics() bool {
	return c.Admin() || (c.Via == ViaTLS && c.Trusted && c.Cert.Type == api.CertificateTypeMetrics)
}

// String names the caller in logs: "uid 0", "cert laptop (3b2c…)", "untrusted 10.0.0.2".
func (c Caller) String() string {
	switch {
	case c.Via == ViaUnix:
		return "unix uid " + itoa(c.UID)
	case c.Via == ViaTLS && c.Member:
		return "cluster member (" + short(c.Fingerprint) + ")"
	case c.Via == ViaTLS && c.Trusted:
		return "cert " + c.Cert.Name + " (" + short(c.Fingerprint) + ")"
	case c.Via == ViaTLS && c.Fingerprint != "":
		return "untrusted cert " + short(c.Fingerprint)
	}

	return "untrusted"
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}

	return fp
}

func itoa(n int) string {
	if n < 0 {
		return "?"
	}

	return strconv.Itoa(n)
}

type connKey struct{}

// connInfo is what the listener's ConnContext recorded about a connection.
type connInfo struct {
	via      Via
	conn     net.Conn
	uid, pid int
}

// UnixConnContext is the unix socket server's ConnContext: it records the peer's
// credentials once per connection.
func UnixConnContext(ctx context.Context, c net.Conn) context.Context {
	info := &connInfo{via: ViaUnix, conn: c, uid: -1, pid: -1}
	if uc, ok := c.(*net.UnixConn); ok {
		raw, err := uc.SyscallConn()
		if err == nil {
			_ = raw.Control(func(fd uintptr) {
				cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
				if err == nil {
					info.uid, info.pid = int(cred.Uid), int(cred.Pid)
				}
			})
		}
	}

	return context.WithValue(ctx, connKey{}, info)
}

// TLSConnContext is the HTTPS servers' ConnContext.
func TLSConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connInfo{via: ViaTLS, conn: c, uid: -1, pid: -1})
}

// ownConn is the HTTPS connection of the request whose context is ctx, nil for any
// other context.
func ownConn(ctx context.Context) *listener.Conn {
	info, _ := ctx.Value(connKey{}).(*connInfo)
	if info == nil {
		return nil
	}

	tc, ok := info.conn.(*tls.Conn)
	if !ok {
		return nil
	}

	c, _ := tc.NetConn().(*listener.Conn)
	return c
}

// Authenticate returns the caller of r. Over HTTPS only the leaf certificate counts:
// the client proved it holds that one's key, while the rest of the chain it sent is
// unverified (the listener requests a certificate without checking it against a CA).
// A nil store trusts no certificate.
func (s *Store) Authenticate(r *http.Request) Caller {
	info, _ := r.Context().Value(connKey{}).(*connInfo)
	if info == nil {
		return Caller{Via: ViaUnknown, UID: -1, PID: -1}
	}

	if info.via == ViaUnix {
		return Caller{Via: ViaUnix, UID: info.uid, PID: info.pid}
	}

	c := Caller{Via: ViaTLS, UID: -1, PID: -1}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return c
	}

	c.Fingerprint = listener.Fingerprint(r.TLS.PeerCertificates[0].Raw)
	if s.isClusterFingerprint(c.Fingerprint) {
		c.Trusted, c.Member = true, true
		c.Cert = Entry{Fingerprint: c.Fingerprint, Name: "cluster member", Type: api.CertificateTypeServer}
		return c
	}

	entry, ok := s.Lookup(c.Fingerprint)
	if !ok {
		return c
	}

	c.Trusted, c.Cert = true, entry

	// Keep the connection to cut it should the certificate go; if it went meanwhile,
	// this request is refused too.
	if ec := ownConn(r.Context()); ec != nil && !s.conns.bind(c.Fingerprint, ec, s) {
		return Caller{Via: ViaTLS, UID: -1, PID: -1, Fingerprint: c.Fingerprint}
	}

	return c
}
