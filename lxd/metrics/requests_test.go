package metrics

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRequestsMiddleware(t *testing.T) {
	var q Requests
	inside := make(chan string, 1)

	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusNotFound) })
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		var s Set
		q.AddTo(&s)
		var b bytes.Buffer
		s.WriteTo(&b)
		inside <- b.String()
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		// As gorilla/websocket does: a type assertion, not the ResponseController.
		h, ok := w.(http.Hijacker)
		if !ok {
			t.Error("the recorder hides http.Hijacker")
			return
		}

		conn, rw, err := h.Hijack()
		if err != nil {
			t.Error(err)
			return
		}

		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		_ = rw.Flush()
		time.Sleep(50 * time.Millisecond) // a "session" far longer than the requests
		_ = conn.Close()
	})

	srv := httptest.NewServer(q.Wrap(mux))
	defer srv.Close()

	for _, p := range []string{"/ok", "/ok", "/missing", "/silent", "/busy"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}

		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}

	req, _ := http.NewRequest("DELETE", srv.URL+"/ok", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	_ = resp.Body.Close()

	req, _ = http.NewRequest("BREW", srv.URL+"/ok", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	_ = resp.Body.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	_, _ = io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	_, _ = io.Copy(io.Discard, conn)
	_ = conn.Close()
	if !strings.Contains(line, "101") {
		t.Fatalf("upgrade answered %q", line)
	}

	busy := <-inside
	if !strings.Contains(busy, "lxd_api_requests_ongoing 1\n") {
		t.Errorf("the request being served is not counted as ongoing:\n%s", busy)
	}

	// The hijacking handler returns after its sleep: wait until it is counted.
	deadline := time.Now().Add(5 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		var s Set
		q.AddTo(&s)
		var b bytes.Buffer
		s.WriteTo(&b)
		out = b.String()
		if strings.Contains(out, `code="101"`) {
			break
		}

		time.Sleep(10 * time.Millisecond)
	}

	for _, want := range []string{
		"lxd_api_requests_ongoing 0\n",
		`lxd_api_requests_total{code="200",method="GET"} 4` + "\n", // two /ok, /silent, /busy
		`lxd_api_requests_total{code="404",method="GET"} 1` + "\n",
		`lxd_api_requests_total{code="200",method="DELETE"} 1` + "\n",
		`lxd_api_requests_total{code="200",method="other"} 1` + "\n",
		`lxd_api_requests_total{code="101",method="GET"} 1` + "\n",
		// The websocket session is not a latency: 5 GETs timed, not 6.
		`lxd_api_request_duration_seconds_count{method="GET"} 5` + "\n",
		`lxd_api_request_duration_seconds_bucket{method="GET",le="+Inf"} 5` + "\n",
		"# TYPE lxd_api_request_duration_seconds histogram\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	if strings.Contains(out, "BREW") {
		t.Error("an unknown method became a label value")
	}
}

func TestRequestsHistogramBuckets(t *testing.T) {
	var q Requests
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 7 * time.Millisecond, 2 * time.Minute} {
		q.observe("GET", &recorder{code: 200}, d)
	}

	var s Set
	q.AddTo(&s)
	var b bytes.Buffer
	s.WriteTo(&b)

	for _, want := range []string{
		`{method="GET",le="0.001"} 2`, // a bound is inclusive
		`{method="GET",le="0.005"} 2`,
		`{method="GET",le="0.01"} 3`,
		`{method="GET",le="30"} 3`,
		`{method="GET",le="+Inf"} 4`,
		`lxd_api_request_duration_seconds_sum{method="GET"} 120.0085`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
