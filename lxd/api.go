package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
)

// This is the only file that knows gorilla/mux: handlers read path variables through
// pathVar, so the router can change without touching them.

// handlerFunc is what every endpoint method implements. It never writes to the
// ResponseWriter itself.
type handlerFunc func(d *Daemon, r *http.Request) response.Response

// APIEndpoint declares one URL and a handler per method.
type APIEndpoint struct {
	Path   string // below /1.0; "" is /1.0 itself
	Get    handlerFunc
	Put    handlerFunc
	Post   handlerFunc
	Delete handlerFunc
	Patch  handlerFunc

	// Untrusted lists the methods an untrusted HTTPS caller may use (auth.go); the
	// handler then decides what such a caller sees.
	Untrusted []string
}

// maxJSONBody caps request bodies that are decoded as JSON.
const maxJSONBody = 4 << 20

func (d *Daemon) router() http.Handler {
	m := mux.NewRouter()
	m.StrictSlash(false)
	m.SkipClean(true)
	m.UseEncodedPath()

	// Anyone may ask: the client fetches the server certificate this way.
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.serve(w, r, func(trust.Caller, *http.Request) (response.Response, bool) {
			return response.SyncResponse(true, []string{"/1.0"}), true
		})
	})

	for _, rt := range routes(endpoints) {
		ep := rt.ep
		m.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			r = rt.withCollection(r)
			d.serve(w, r, func(c trust.Caller, r *http.Request) (response.Response, bool) {
				if !d.allowed(ep, c, r) {
					d.audit.Refused(c, r, "not trusted for this request")
					return response.Forbidden(refusal(c)), false
				}

				r, denied := d.scopeProject(ep, r)
				if denied != nil {
					return denied, true
				}

				if fwd, ok := d.forwardIfRemote(ep, r); ok {
					return fwd, true
				}

				return d.dispatch(ep, r), true
			})
		})
	}

	for _, ep := range internalEndpoints {
		m.HandleFunc("/"+ep.Path, func(w http.ResponseWriter, r *http.Request) {
			d.serve(w, r, func(c trust.Caller, r *http.Request) (response.Response, bool) {
				if !d.allowed(ep, c, r) {
					d.audit.Refused(c, r, "internal endpoint: cluster members only")
					return response.Forbidden(fmt.Errorf("%s is for cluster members only", r.URL.Path)), false
				}

				return d.dispatch(ep, r), true
			})
		})
	}

	m.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.serve(w, r, func(c trust.Caller, r *http.Request) (response.Response, bool) {
			if !c.Admin() { // an unknown path is only told to an administrator
				d.audit.Refused(c, r, "not trusted for this request")
				return response.Forbidden(refusal(c)), false
			}

			return response.NotFound(fmt.Errorf("unknown API path %q", r.URL.Path)), true
		})
	})

	return apiRequests.Wrap(m)
}

// Bounds on reading what a handler left of a request body.
const (
	maxDiscardBody = 256 << 20
	discardTimeout = 5 * time.Second
)

// discardBody reads what the handler left unread of the request body (a refused or too
// large one) before the response goes out. net/http closes a connection with more than
// 256 KiB unread, and a client still writing its body then gets EPIPE instead of our
// error: the 413 for an oversized request would reach it only now and then.
func discardBody(r *http.Request) {
	if b, ok := r.Body.(*limitedBody); ok {
		b.discard(maxDiscardBody, discardTimeout)
	}
}

// serve authenticates r, has h answer (h reports whether the caller was authorised),
// and renders the answer. An authorised mutating request is recorded in the audit log
// once its status is known and before the answer goes out; refusals are logged,
// rate-limited, where they are decided.
func (d *Daemon) serve(w http.ResponseWriter, r *http.Request, h func(trust.Caller, *http.Request) (response.Response, bool)) {
	c := d.relayedCaller(d.trust.Authenticate(r), r)
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	aw, r := limitRequest(w, r, c)
	resp, authorised := h(c, r)
	discardBody(r)
	if authorised && trust.Mutating(r.Method) {
		aw.onStatus = func(status int) { d.audit.Request(c, r, status) }
	}

	d.render(aw, r, resp)
	aw.finish()
}

func (d *Daemon) dispatch(ep APIEndpoint, r *http.Request) response.Response {
	var h handlerFunc
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h = ep.Get
	case http.MethodPut:
		h = ep.Put
	case http.MethodPost:
		h = ep.Post
	case http.MethodDelete:
		h = ep.Delete
	case http.MethodPatch:
		h = ep.Patch
	}

	if h == nil {
		return unserved(ep, r)
	}

	return h(d, r)
}

func (d *Daemon) render(w http.ResponseWriter, r *http.Request, resp response.Response) {
	err := resp.Render(w, r)
	if err != nil {
		d.log.Debug("writing response", "path", r.URL.Path, "err", err)
	}

	d.log.Debug("request", "method", r.Method, trust.PathAttr(r), "response", resp.String())
}

// pathVar returns an unescaped path variable.
func pathVar(r *http.Request, name string) string {
	v := mux.Vars(r)[name]
	u, err := url.PathUnescape(v)
	if err != nil {
		return v
	}

	return u
}

// setPathVar is r with path variable name set to value (already unescaped).
func setPathVar(r *http.Request, name, value string) *http.Request {
	vars := map[string]string{}
	for k, v := range mux.Vars(r) {
		vars[k] = v
	}

	vars[name] = url.PathEscape(value)
	return mux.SetURLVars(r, vars)
}

// decodeJSON reads a JSON request body into v: 413 when too large, 400 when malformed.
func decodeJSON(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return api.StatusErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
		}

		if errors.Is(err, io.EOF) {
			return api.StatusErrorf(http.StatusBadRequest, "request body is empty")
		}

		return api.StatusErrorf(http.StatusBadRequest, "malformed JSON in request body: %v", err)
	}

	// Anything after the object is a malformed request too.
	_, err = dec.Token()
	if err == nil {
		return api.StatusErrorf(http.StatusBadRequest, "malformed JSON in request body: trailing data")
	}

	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return api.StatusErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}

	return nil
}

// recursion reads the recursion query parameter (0 when absent or invalid).
func recursion(r *http.Request) int {
	n, _ := strconv.Atoi(r.FormValue("recursion"))
	return n
}

// urlsOf turns names into API URLs of a collection.
func urlsOf(collection string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, "/1.0/"+collection+"/"+url.PathEscape(n))
	}

	return out
}

// fieldMatches is used by filter=: anchored regexp when it compiles, else case-insensitive
// equality.
func fieldMatches(value, pattern string) bool {
	if strings.EqualFold(value, pattern) {
		return true
	}

	re, err := compileAnchored(pattern)
	if err != nil {
		return false
	}

	return re.MatchString(value)
}
