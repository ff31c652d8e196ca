package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// member starts a TLS server for h and returns it as a member, with the TLS
// configuration that reaches it (its certificate pinned).
func member(t *testing.T, name string, h http.Handler) (Member, *tls.Config, *httptest.Server) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return Member{ID: 1, Name: name, Address: srv.Listener.Addr().String(), Online: true}, cfg, srv
}

// front serves f.Forward to m for every request, as the router does for a remote
// instance.
func front(t *testing.T, f *Forwarder, m Member, caller string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Forward(w, r, m, caller)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestForwardHTTP: method, path, query, body (streamed, large) and end-to-end headers
// reach the member; hop-by-hop headers do not; the relay headers name the origin and
// the caller; the member's answer (status, headers, body) comes back unchanged; the
// operation the member created is noted.
func TestForwardHTTP(t *testing.T) {
	type seen struct {
		method, uri, fwd, caller, conn, hop, keep, custom string
		sum                                               [32]byte
		n                                                 int
	}

	got := make(chan seen, 1)
	m, cfg, _ := member(t, "n2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{
			method: r.Method, uri: r.URL.RequestURI(), fwd: r.Header.Get(HeaderForwarded), caller: r.Header.Get(HeaderCaller),
			conn: r.Header.Get("Connection"), hop: r.Header.Get("X-Hop"), keep: r.Header.Get("Keep-Alive"),
			custom: r.Header.Get("X-Custom"), sum: sha256.Sum256(body), n: len(body),
		}

		w.Header().Set("Location", "/1.0/operations/0b5e1e7c-aaaa")
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"type":"async"}`))
	}))

	f := New("n1", cfg, testLog())
	var opID string
	var opMember Member
	f.OnOperation = func(id string, m Member) { opID, opMember = id, m }
	srv := front(t, f, m, "3b2cfp")

	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/1.0/instances/c1/files?path=%2Fetc%2Fx&project=p", bytes.NewReader(body))
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must not pass")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-Custom", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Answer") != "yes" || string(out) != `{"type":"async"}` {
		t.Fatalf("answer changed on the way: %d %v %q", resp.StatusCode, resp.Header, out)
	}

	s := <-got
	if s.method != http.MethodPost || s.uri != "/1.0/instances/c1/files?path=%2Fetc%2Fx&project=p" {
		t.Errorf("member got %s %s", s.method, s.uri)
	}

	if s.n != len(body) || s.sum != sha256.Sum256(body) {
		t.Errorf("body: member got %d bytes, sent %d (or different content)", s.n, len(body))
	}

	if s.fwd != "n1" || s.caller != "3b2cfp" {
		t.Errorf("relay headers: forwarded %q caller %q", s.fwd, s.caller)
	}

	if s.hop != "" || s.keep != "" || strings.Contains(s.conn, "X-Hop") {
		t.Errorf("hop-by-hop headers passed: X-Hop %q Keep-Alive %q Connection %q", s.hop, s.keep, s.conn)
	}

	if s.custom != "kept" {
		t.Errorf("end-to-end header lost: %q", s.custom)
	}

	if opID != "0b5e1e7c-aaaa" || opMember.Name != "n2" {
		t.Errorf("operation not noted: %q on %q", opID, opMember.Name)
	}
}

// TestForwardWebsocket: an upgrade is relayed and bytes flow both ways afterwards:
// the member speaks first, then echoes what the client sends, binary and text.
func TestForwardWebsocket(t *testing.T) {
	m, cfg, _ := member(t, "n2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("secret") != "s3" || r.Header.Get(HeaderForwarded) != "n1" {
			http.Error(w, "bad secret", http.StatusForbidden)
			return
		}

		conn, err := ws.Upgrade(w, r)
		if err != nil {
			return
		}

		defer func() { _ = conn.Close() }()
		_ = conn.WriteMessage(2, []byte("hello from n2"))
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}

			_ = conn.WriteMessage(typ, append([]byte("echo:"), data...))
		}
	}))

	srv := front(t, New("n1", cfg, testLog()), m, CallerUntrusted)
	d := ws.NewDialer(ws.DialConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/1.0/operations/op1/websocket?secret=s3"
	conn, err := d.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := conn.ReadMessage()
	if err != nil || string(data) != "hello from n2" {
		t.Fatalf("member to client: %q %v", data, err)
	}

	big := bytes.Repeat([]byte{0xfe}, 300<<10)
	for _, msg := range []struct {
		typ  int
		data []byte
	}{{1, []byte("ls -l")}, {2, big}} {
		err = conn.WriteMessage(msg.typ, msg.data)
		if err != nil {
			t.Fatal(err)
		}

		typ, data, err := conn.ReadMessage()
		if err != nil || typ != msg.typ || !bytes.Equal(data, append([]byte("echo:"), msg.data...)) {
			t.Fatalf("client to member and back: type %d, %d bytes, %v", typ, len(data), err)
		}
	}

	// A refused upgrade comes back as the member's refusal.
	_, err = d.Dial(ctx, strings.Replace(u, "secret=s3", "secret=wrong", 1), nil)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused upgrade: %v", err)
	}
}

// errorOf reads an API error envelope.
func errorOf(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	var env api.Response
	err := json.NewDecoder(resp.Body).Decode(&env)
	if err != nil {
		t.Fatalf("answer is not an API envelope: %v", err)
	}

	return env.ErrorCode, env.Error
}

// TestForwardUnreachable: a member that accepts TCP connections but never answers (a
// listener nobody accepts from: the kernel completes the handshake, TLS never comes),
// one whose port is closed, and one the cluster knows offline each give a 503 naming
// the member, within the dial deadline, never a hang.
func TestForwardUnreachable(t *testing.T) {
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = blackhole.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	closedAddr := closed.Addr().String()
	_ = closed.Close()

	for _, tc := range []struct {
		name string
		m    Member
		want string
		max  time.Duration
	}{
		{"blackholed", Member{Name: "n2", Address: blackhole.Addr().String(), Online: true}, "member n2 (" + blackhole.Addr().String() + ") is unreachable: ", DialTimeout + time.Second},
		{"closed port", Member{Name: "n3", Address: closedAddr, Online: true}, "member n3 (" + closedAddr + ") is unreachable: ", time.Second},
		{"offline", Member{Name: "n4", Address: blackhole.Addr().String()}, "member n4 (" + blackhole.Addr().String() + ") is offline", 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := front(t, New("n1", &tls.Config{MinVersion: tls.VersionTLS13}, testLog()), tc.m, CallerAdmin)
			start := time.Now()
			resp, err := http.Get(srv.URL + "/1.0/instances/c1")
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}

			code, msg := errorOf(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable || code != http.StatusServiceUnavailable || !strings.HasPrefix(msg, tc.want) {
				t.Errorf("got %d %q, want 503 %q...", resp.StatusCode, msg, tc.want)
			}

			if took > tc.max {
				t.Errorf("answered in %v, want within %v", took, tc.max)
			}

			t.Logf("%s: 503 in %v: %s", tc.name, took.Round(time.Millisecond), msg)
		})
	}
}

// TestSanitize: the relay headers are dropped from anyone but a member.
func TestSanitize(t *testing.T) {
	for _, fromMember := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodGet, "/1.0/instances", nil)
		r.Header.Set(HeaderForwarded, "n9")
		r.Header.Set(HeaderCaller, CallerAdmin)
		Sanitize(r, fromMember)
		if IsForwarded(r) != fromMember || (r.Header.Get(HeaderCaller) != "") != fromMember {
			t.Errorf("from member %v: forwarded %v, caller %q", fromMember, IsForwarded(r), r.Header.Get(HeaderCaller))
		}
	}
}

// TestFanoutGet: every member is asked at once; one that answers, one whose port is
// closed, one that hangs and one offline give their answer or their error, in order,
// within the deadline.
func TestFanoutGet(t *testing.T) {
	var mu sync.Mutex
	var fwd []string
	ok, cfg, _ := member(t, "n2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fwd = append(fwd, r.Header.Get(HeaderForwarded)+" "+r.Header.Get(HeaderCaller)+" "+r.URL.RequestURI())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"type":"sync","status":"Success","status_code":200,"metadata":["/1.0/instances/b"]}`))
	}))

	release := make(chan struct{})
	hang, _, hangSrv := member(t, "n4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	// Both test servers share httptest's certificate: one TLS configuration reaches both.
	_ = hangSrv

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := Member{Name: "n3", Address: closed.Addr().String(), Online: true}
	_ = closed.Close()
	offline := Member{Name: "n5", Address: "127.0.0.1:1"}

	f := New("n1", cfg, testLog())
	start := time.Now()
	got := f.Get(context.Background(), []Member{ok, refused, hang, offline}, "/1.0/instances", map[string][]string{"recursion": {"0"}}, "fp1", 500*time.Millisecond)
	took := time.Since(start)
	if took > 1500*time.Millisecond {
		t.Errorf("fan-out took %v with a 500ms deadline", took)
	}

	if got[0].Err != nil || string(got[0].Metadata) != `["/1.0/instances/b"]` {
		t.Errorf("n2: %s %v", got[0].Metadata, got[0].Err)
	}

	for i, want := range []string{"", "member n3 (", "member n4 (", "member n5 ("} {
		if i == 0 {
			continue
		}

		if got[i].Err == nil || !strings.HasPrefix(got[i].Err.Error(), want) || got[i].Member.Name != []string{"", "n3", "n4", "n5"}[i] {
			t.Errorf("answer %d: %v, want an error starting %q", i, got[i].Err, want)
		}
	}

	if len(fwd) != 1 || fwd[0] != "n1 fp1 /1.0/instances?recursion=0" {
		t.Errorf("member saw %q", fwd)
	}
}

// TestOperations: remembered ids route to their member, bounded in number.
func TestOperations(t *testing.T) {
	o := NewOperations()
	o.max = 3
	for i, id := range []string{"a", "b", "c", "d"} {
		o.Add(id, Member{ID: int64(i), Name: id})
		time.Sleep(time.Millisecond)
	}

	if _, ok := o.Lookup("a"); ok {
		t.Error("the oldest entry was kept past the bound")
	}

	if m, ok := o.Lookup("d"); !ok || m.Name != "d" {
		t.Errorf("d: %v %v", m, ok)
	}

	for _, u := range []string{"/1.0/operations/x1", "/1.0/operations/x1/wait?timeout=3", "/1.0/operations/x1?project=p"} {
		if id, ok := OperationID(u); !ok || id != "x1" {
			t.Errorf("OperationID(%q) = %q %v", u, id, ok)
		}
	}

	if _, ok := OperationID("/1.0/instances/x"); ok {
		t.Error("an instance URL is not an operation")
	}
}

// TestFetchImage: the members are asked in turn (self and offline ones skipped), as a
// relayed request; one without the file (404) is passed over, the first with it
// answers; none having it is ErrImageNotFound.
func TestFetchImage(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	var mu sync.Mutex
	var asked []string
	handler := func(name string, has bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, name+" "+r.Header.Get(HeaderForwarded)+" "+r.URL.RequestURI())
			mu.Unlock()
			if !has {
				http.Error(w, "no file", http.StatusNotFound)
				return
			}

			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write([]byte("tarball of " + name))
		})
	}

	without, cfg, _ := member(t, "n2", handler("n2", false))
	with, _, _ := member(t, "n3", handler("n3", true))
	self := Member{Name: "n1", Address: "127.0.0.1:1", Online: true}
	offline := Member{Name: "n4", Address: with.Address}
	f := New("n1", cfg, testLog())
	body, ctype, from, err := f.FetchImage(context.Background(), []Member{self, offline, without, with}, "p1", fp)
	if err != nil {
		t.Fatal(err)
	}

	data, _ := io.ReadAll(body)
	_ = body.Close()
	if string(data) != "tarball of n3" || from.Name != "n3" || ctype != "application/octet-stream" {
		t.Errorf("got %q from %s (%s)", data, from.Name, ctype)
	}

	want := []string{"n2 n1 /1.0/images/" + fp + "/export?project=p1", "n3 n1 /1.0/images/" + fp + "/export?project=p1"}
	if strings.Join(asked, "|") != strings.Join(want, "|") {
		t.Errorf("asked %q, want %q", asked, want)
	}

	_, _, _, err = f.FetchImage(context.Background(), []Member{self, without}, "", fp)
	if !errors.Is(err, ErrImageNotFound) {
		t.Errorf("nobody has it: %v", err)
	}
}
