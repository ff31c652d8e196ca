package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/trust"
)

// The listener bounds connections and the reading of headers; these bound the rest of
// a request by its caller's trust: reading the body and writing the answer. Without
// them a caller that sends headers and then part of a body, or never reads the answer,
// holds its connection (and the memory of its half-read body) for ever.
const (
	// An untrusted caller has one request with a body, POST /1.0/certificates with a
	// token: small, and sent at once.
	untrustedBodyTimeout = 10 * time.Second
	untrustedMaxBody     = 64 << 10
	// What follows an untrusted body past its cap is read and dropped up to this much,
	// so that a client still sending gets the 413 rather than a reset connection
	// (closing with its bytes unread makes the kernel send RST, which can overtake the
	// answer). Dropping costs no memory; beyond this the connection is cut.
	untrustedDrainBody = 1 << 20
	// Each write to an untrusted caller (a public image export) must go through in this
	// long: a client that stops reading is cut off.
	untrustedWriteIdle = 30 * time.Second
	// A trusted caller uploads images and backups of any size at any rate, but must
	// send something this often.
	trustedBodyIdle = 2 * time.Minute
)

// untrusted reports whether c came over the network without a trusted certificate.
func untrusted(c trust.Caller) bool {
	return c.Via != trust.ViaUnix && !c.Trusted
}

// limitRequest wraps r's body and w with the limits of c.
func limitRequest(w http.ResponseWriter, r *http.Request, c trust.Caller) (*apiWriter, *http.Request) {
	rc := http.NewResponseController(w)
	aw := &apiWriter{ResponseWriter: w, rc: rc}
	if c.Via != trust.ViaUnix {
		aw.untrusted = untrusted(c)
		// A deadline left by an earlier untrusted request on this connection goes.
		_ = rc.SetWriteDeadline(aw.nextWriteDeadline())
	}

	if r.Body == nil || r.Body == http.NoBody {
		return aw, r
	}

	b := &limitedBody{rc: rc, raw: r.Body}
	switch {
	case c.Via == trust.ViaUnix:
		b.src = r.Body
	case aw.untrusted:
		// No writer: net/http would otherwise close the connection after the 413
		// even once discard drained the body to its end.
		b.src = http.MaxBytesReader(nil, r.Body, untrustedMaxBody)
		b.deadline = time.Now().Add(untrustedBodyTimeout)
		_ = rc.SetReadDeadline(b.deadline)
	default:
		b.src = r.Body
		b.idle = trustedBodyIdle
	}

	r2 := *r
	r2.Body = b
	return aw, &r2
}

// limitedBody reads a request body under a fixed deadline (untrusted callers) or an
// idle timeout per read (trusted ones). Once the body failed (timeout, too large),
// every later read fails at once, net/http's own reading of leftovers included, so
// the connection closes after the answer; only discard may still drain what follows
// an untrusted body past its cap.
type limitedBody struct {
	src      io.ReadCloser
	raw      io.ReadCloser // the body without the caller's size cap, for widenBody
	rc       *http.ResponseController
	deadline time.Time     // fixed deadline, zero when none
	idle     time.Duration // per-read timeout, 0 when none
	done     bool
	kept     bool // the response reads it (keepBody): not discarded before
	overCap  bool // failed at the caller's size cap: the rest may be drained, not read
	err      error
}

// pastDeadline makes every further read of the connection fail at once.
var pastDeadline = time.Unix(1, 0)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}

	if b.idle > 0 && !b.done {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}

	n, err := b.src.Read(p)
	b.finish(err)
	return n, err
}

func (b *limitedBody) finish(err error) {
	switch {
	case err == nil || b.done:
	case errors.Is(err, io.EOF):
		// The whole body is in: net/http's watch for a closed connection reads next,
		// and must not time out.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	default:
		b.done, b.err = true, err
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			// Left to discard, which drains or cuts the connection.
			b.overCap = true
			return
		}

		_ = b.rc.SetReadDeadline(pastDeadline)
	}
}

func (b *limitedBody) Close() error { return b.src.Close() }

// leaveBody makes the router leave r's body unread after a refusal: net/http then closes
// the connection instead of reading it. For a large upload refused up front, whose
// client waits for "100 Continue" before sending (or gets the answer while sending).
func leaveBody(r *http.Request) {
	if b, ok := r.Body.(*limitedBody); ok {
		b.done = true
	}
}

// keepBody leaves r's body to the response, which reads it when rendered (a request
// relayed to another cluster member streams it there): the router must not discard it
// before.
func keepBody(r *http.Request) {
	if b, ok := r.Body.(*limitedBody); ok {
		b.kept = true
	}
}

// widenBody gives r's body, not read yet, a trusted caller's limits: at most max bytes,
// each read within idle. A handler calls it once the request proved a right to send
// more (an image push token) than its caller's trust allows.
func widenBody(r *http.Request, max int64, idle time.Duration) {
	b, ok := r.Body.(*limitedBody)
	if !ok || b.done {
		return
	}

	b.src = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(b.raw, max), b.raw}
	b.deadline = time.Time{}
	b.idle = idle
	_ = b.rc.SetReadDeadline(time.Time{})
}

// discard reads what the handler left of the body, within limit and timeout (and the
// body's own deadline). Past an untrusted body's cap (hit by the handler or here) it
// drops at most untrustedDrainBody more from the connection.
func (b *limitedBody) discard(limit int64, timeout time.Duration) {
	if b.kept || (b.done && !b.overCap) {
		return
	}

	deadline := time.Now().Add(timeout)
	if !b.deadline.IsZero() && b.deadline.Before(deadline) {
		deadline = b.deadline
	}

	_ = b.rc.SetReadDeadline(deadline)
	if !b.done {
		idle := b.idle
		b.idle = 0
		_, err := io.CopyN(io.Discard, b, limit)
		b.idle = idle
		if err == nil {
			// More than limit: the connection closes after the answer.
			b.finish(errors.New("request body left unread"))
		}
	}

	if b.overCap {
		b.overCap = false
		_, err := io.CopyN(io.Discard, b.raw, min(limit, untrustedDrainBody))
		if errors.Is(err, io.EOF) {
			// All of it is in: the connection may serve another request.
			_ = b.rc.SetReadDeadline(time.Time{})
		} else {
			_ = b.rc.SetReadDeadline(pastDeadline)
		}
	}
}

// apiWriter bounds each write to an untrusted caller and runs onStatus once, when the
// status is known and before anything is sent (the audit line is then in the log
// before the client sees the answer).
type apiWriter struct {
	http.ResponseWriter
	rc        *http.ResponseController
	untrusted bool
	onStatus  func(int)
	status    int
}

func (a *apiWriter) nextWriteDeadline() time.Time {
	if a.untrusted {
		return time.Now().Add(untrustedWriteIdle)
	}

	return time.Time{}
}

func (a *apiWriter) record(code int) {
	if a.status != 0 {
		return
	}

	a.status = code
	if a.onStatus != nil {
		a.onStatus(code)
	}
}

func (a *apiWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		a.record(code)
	}

	a.ResponseWriter.WriteHeader(code)
}

func (a *apiWriter) Write(p []byte) (int, error) {
	a.record(http.StatusOK)
	if a.untrusted {
		_ = a.rc.SetWriteDeadline(a.nextWriteDeadline())
	}

	return a.ResponseWriter.Write(p)
}

func (a *apiWriter) Flush() {
	if a.untrusted {
		_ = a.rc.SetWriteDeadline(a.nextWriteDeadline())
	}

	_ = a.rc.Flush()
}

// Hijack hands the connection over without this request's deadlines: websockets keep
// their own.
func (a *apiWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	a.record(http.StatusSwitchingProtocols)
	conn, brw, err := a.rc.Hijack()
	if err == nil {
		_ = conn.SetDeadline(time.Time{})
	}

	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (a *apiWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish records 200 for a response that wrote nothing.
func (a *apiWriter) finish() { a.record(http.StatusOK) }
