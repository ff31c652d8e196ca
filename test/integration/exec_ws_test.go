package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// The server side of exec and console, driven with raw websockets the way
// the LXD client speaks: no client library in between.

// apiClient is one HTTP client on the daemon's socket, so idle connections
// can be closed before counting the daemon's fds and goroutines.
type apiClient struct {
	t    *testing.T
	dir  string
	http *http.Client
	tr   *http.Transport
}

func (d *daemon) api() *apiClient {
	sock := filepath.Join(d.dir, "unix.socket")
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}

	tr := &http.Transport{DialContext: dial}
	d.t.Cleanup(tr.CloseIdleConnections)

	return &apiClient{t: d.t, dir: d.dir, http: &http.Client{Transport: tr}, tr: tr}
}

// do sends a request and decodes the envelope.
func (c *apiClient) do(method, path string, body any) (int, api.Response) {
	c.t.Helper()

	code, env, _ := requestEnvelope(c.t, c.http, method, path, body, nil)

	return code, env
}

// rawGet returns a raw (non-JSON) body.
func (c *apiClient) rawGet(path string) (int, []byte) {
	c.t.Helper()

	resp, err := c.http.Get("http://unix.socket" + path)
	if err != nil {
		c.t.Fatal(err)
	}

	defer resp.Body.Close()

	data, _ := io.ReadAll(resp.Body)

	return resp.StatusCode, data
}

// startOp posts body and returns the operation it started.
func (c *apiClient) startOp(path string, body any) api.Operation {
	c.t.Helper()

	code, env := c.do("POST", path, body)
	if code != http.StatusAccepted {
		c.t.Fatalf("POST %s: %d %s", path, code, env.Error)
	}

	op, err := env.MetadataAsOperation()
	if err != nil {
		c.t.Fatal(err)
	}

	return *op
}

// wait waits for an operation to end and returns it.
func (c *apiClient) wait(id string) api.Operation {
	c.t.Helper()

	_, env := c.do("GET", "/1.0/operations/"+id+"/wait?timeout=60", nil)

	var op api.Operation

	err := json.Unmarshal(env.Metadata, &op)
	if err != nil {
		c.t.Fatalf("decoding operation: %v (%s)", err, env.Error)
	}

	return op
}

// dialWS connects to one stream of a websocket operation.
func (c *apiClient) dialWS(opID, secret string) (*websocket.Conn, *http.Response, error) {
	sock := filepath.Join(c.dir, "unix.socket")
	dialer := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		HandshakeTimeout: 5 * time.Second,
	}

	return dialer.Dial("ws://unix.socket/1.0/operations/"+opID+"/websocket?secret="+secret, nil)
}

// streams connects the fds of op in LXD's order: control first.
func (c *apiClient) streams(op api.Operation) map[string]*websocket.Conn {
	c.t.Helper()

	fds := opFds(c.t, op)
	conns := map[string]*websocket.Conn{}

	for _, fd := range []string{"control", "0", "1", "2"} {
		secret, ok := fds[fd]
		if !ok {
			continue
		}

		conn, _, err := c.dialWS(op.ID, secret)
		if err != nil {
			c.t.Fatalf("connecting fd %s: %v", fd, err)
		}

		c.t.Cleanup(func() { _ = conn.Close() })
		conns[fd] = conn
	}

	return conns
}

func opFds(t *testing.T, op api.Operation) map[string]string {
	t.Helper()

	raw, ok := op.Metadata["fds"].(map[string]any)
	if !ok {
		t.Fatalf("operation metadata without fds: %v", op.Metadata)
	}

	fds := map[string]string{}
	for k, v := range raw {
		fds[k], _ = v.(string)
	}

	return fds
}

// readStream collects binary messages until a barrier or close.
func readStream(conn *websocket.Conn) <-chan []byte {
	ch := make(chan []byte, 1)

	go func() {
		var buf bytes.Buffer

		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))

		for {
			mt, data, err := conn.ReadMessage()
			if err != nil || (mt == websocket.TextMessage && len(data) == 0) {
				break
			}

			buf.Write(data)
		}

		ch <- buf.Bytes()
	}()

	return ch
}

// execResult is what a non-interactive exec produced.
type execResult struct {
	stdout, stderr string
	ret            int
	op             api.Operation
}

// exec runs a non-interactive command through the websocket protocol.
func (c *apiClient) exec(name string, req api.InstanceExecPost, stdin []byte) execResult {
	c.t.Helper()

	req.WaitForWS = true
	req.Interactive = false

	op := c.startOp("/1.0/instances/"+name+"/exec", req)
	conns := c.streams(op)

	outCh, errCh := readStream(conns["1"]), readStream(conns["2"])

	// Nothing comes on control, but reading it answers pings.
	go func() {
		for {
			_, _, err := conns["control"].ReadMessage()
			if err != nil {
				return
			}
		}
	}()

	var wmu sync.Mutex

	for len(stdin) > 0 {
		n := min(len(stdin), 64<<10)

		wmu.Lock()
		err := conns["0"].WriteMessage(websocket.BinaryMessage, stdin[:n])
		wmu.Unlock()

		if err != nil {
			break
		}

		stdin = stdin[n:]
	}

	_ = conns["0"].WriteMessage(websocket.TextMessage, nil) // stdin EOF

	res := execResult{stdout: string(<-outCh), stderr: string(<-errCh)}
	res.op = c.wait(op.ID)
	res.ret = opReturn(c.t, res.op)

	for _, conn := range conns {
		_ = conn.Close()
	}

	return res
}

func opReturn(t *testing.T, op api.Operation) int {
	t.Helper()

	r, ok := op.Metadata["return"].(float64)
	if !ok {
		t.Fatalf("operation %s (%s, %q) has no return: %v", op.ID, op.Status, op.Err, op.Metadata)
	}

	return int(r)
}

// sh runs a shell command as root and returns stdout, failing on a non-zero exit.
func (c *apiClient) sh(name, script string) string {
	c.t.Helper()

	r := c.exec(name, api.InstanceExecPost{Command: []string{"sh", "-c", script}}, nil)
	if r.ret != 0 {
		c.t.Fatalf("%q: return %d, stderr %q", script, r.ret, r.stderr)
	}

	return r.stdout
}

// goroutines reads the daemon's goroutine count from its debug endpoint.
func (c *apiClient) goroutines() int {
	c.t.Helper()

	_, env := c.do("GET", "/1.0/internal/debug/goroutines", nil)

	var m map[string]int

	err := json.Unmarshal(env.Metadata, &m)
	if err != nil {
		c.t.Fatalf("goroutines: %v", err)
	}

	c.tr.CloseIdleConnections()

	return m["goroutines"]
}

// control sends one control message.
func sendControl(t *testing.T, conn *websocket.Conn, msg api.InstanceExecControl) {
	t.Helper()

	b, _ := json.Marshal(msg)

	err := conn.WriteMessage(websocket.TextMessage, b)
	if err != nil {
		t.Fatalf("sending control %s: %v", msg.Command, err)
	}
}

// termReader accumulates a terminal stream for expect-style checks.
type termReader struct {
	mu   sync.Mutex
	buf  strings.Builder
	done chan struct{}
}

func newTermReader(conn *websocket.Conn) *termReader {
	r := &termReader{done: make(chan struct{})}

	go func() {
		defer close(r.done)

		for {
			mt, data, err := conn.ReadMessage()
			if err != nil || (mt == websocket.TextMessage && len(data) == 0) {
				return
			}

			r.mu.Lock()
			r.buf.Write(data)
			r.mu.Unlock()
		}
	}()

	return r
}

func (r *termReader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.buf.String()
}

// expect waits until the output after offset from contains want and
// returns the offset past it.
func (r *termReader) expect(t *testing.T, from int, want string, timeout time.Duration) int {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s := r.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			return from + i + len(want)
		}

		time.Sleep(10 * time.Millisecond)
	}

	t.Fatalf("no %q within %s; output after %d:\n%q", want, timeout, from, r.String()[from:])

	return 0
}

func fdCount(t *testing.T, pid int) int {
	t.Helper()

	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}

	return len(ents)
}
