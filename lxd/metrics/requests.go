package metrics

import (
	"bufio"
	"cmp"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the request latency histogram, in seconds: from
// a cached GET to an operation waited for.
var latencyBounds = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Requests counts the API's requests by method and status, and their latency by method.
// Connections taken over by a websocket (exec, console, events) are counted with status
// 101 but left out of the latency: they last as long as the session.
type Requests struct {
	ongoing atomic.Int64

	mu     sync.Mutex
	counts map[[2]string]uint64  // {method, code}
	hist   map[string]*histogram // method
}

type histogram struct {
	buckets []uint64 // per bound, not cumulative; the last is above every bound
	count   uint64
	sum     float64
}

// methods are the methods kept as label values; anything else counts as "other", so a
// client cannot grow the label set.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// Wrap counts the requests next serves.
func (q *Requests) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q.ongoing.Add(1)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			q.ongoing.Add(-1)
			q.observe(r.Method, rec, time.Since(start))
		}()

		next.ServeHTTP(rec, r)
	})
}

func (q *Requests) observe(method string, rec *recorder, took time.Duration) {
	if !slices.Contains(methods, method) {
		method = "other"
	}

	code := rec.code
	switch {
	case rec.hijacked && code == 0:
		code = http.StatusSwitchingProtocols
	case code == 0:
		code = http.StatusOK // the handler wrote nothing: net/http sends 200
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.counts == nil {
		q.counts = map[[2]string]uint64{}
		q.hist = map[string]*histogram{}
	}

	q.counts[[2]string{method, strconv.Itoa(code)}]++
	if rec.hijacked {
		return
	}

	h := q.hist[method]
	if h == nil {
		h = &histogram{buckets: make([]uint64, len(latencyBounds)+1)}
		q.hist[method] = h
	}

	s := took.Seconds()
	i, _ := slices.BinarySearch(latencyBounds, s) // the first bound >= s
	h.buckets[i]++
	h.count++
	h.sum += s
}

// AddTo adds the request metrics to set.
func (q *Requests) AddTo(set *Set) {
	set.Family("lxd_api_requests_ongoing", Gauge, "The number of API requests currently being handled.").Add(float64(q.ongoing.Load()))

	q.mu.Lock()
	defer q.mu.Unlock()

	total := set.Family("lxd_api_requests_total", Counter, "The number of API requests completed, by method and status code.")
	keys := make([][2]string, 0, len(q.counts))
	for k := range q.counts {
		keys = append(keys, k)
	}

	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}

		return cmp.Compare(a[1], b[1])
	})

	for _, k := range keys {
		total.Add(float64(q.counts[k]), L("code", k[1]), L("method", k[0]))
	}

	lat := set.Family("lxd_api_request_duration_seconds", Histogram, "How long API requests took, by method (websocket sessions left out).")
	for _, m := range sortedKeys(q.hist) {
		h := q.hist[m]
		cum := make([]uint64, len(latencyBounds))
		var n uint64
		for i := range latencyBounds {
			n += h.buckets[i]
			cum[i] = n
		}

		lat.AddHistogram(latencyBounds, cum, h.count, h.sum, L("method", m))
	}
}

// recorder notes the status a handler sends, and whether it took the connection over.
// It keeps http.Hijacker and http.Flusher (websocket upgrades and streams need them) and
// unwraps for http.ResponseController.
type recorder struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.code = code
	}

	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}

	return r.ResponseWriter.Write(b)
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
	}

	return conn, rw, err
}

func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
