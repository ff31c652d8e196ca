package client_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/internal/testdaemon"
	"github.com/berth-dev/berth/shared/api"
)

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}

		time.Sleep(5 * time.Millisecond)
	}
}

// execServer is a daemon with instance c1 running, and a client of it. The
// commands the fake instance knows are in lxd/fake_exec_test.go.
func execServer(t *testing.T) (*testdaemon.Daemon, *client.Client) {
	t.Helper()

	s := start(t, testdaemon.Config{Instances: append(running("c1"), testdaemon.Instance{Name: "off", Status: "Stopped"})})

	return s, connect(t, s)
}

func TestExecStdinRoundTrip(t *testing.T) {
	s, c := execServer(t)

	in := make([]byte, 1<<20)
	_, _ = rand.Read(in)

	var out, errOut bytes.Buffer
	req := api.InstanceExecPost{Command: []string{"cat"}, WaitForWS: true, Environment: map[string]string{"TERM": "xterm"}}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{Stdin: bytes.NewReader(in), Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}

	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("stdout: got %d bytes, want the %d sent (equal prefix: %v)", out.Len(), len(in), bytes.HasPrefix(in, out.Bytes()))
	}

	if errOut.Len() != 0 {
		t.Errorf("stderr = %q", errOut.String())
	}

	// The request is LXD's wire shape.
	var body map[string]any
	for _, r := range s.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/exec") {
			_ = json.Unmarshal(r.Body, &body)
		}
	}

	if body["wait-for-websocket"] != true || body["interactive"] != false || body["record-output"] != false {
		t.Errorf("request body = %v", body)
	}
}

func TestExecNilStdinIsEOF(t *testing.T) {
	_, c := execServer(t)

	var out bytes.Buffer
	req := api.InstanceExecPost{Command: []string{"cat"}, WaitForWS: true}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{Stdout: &out})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 0 || out.Len() != 0 {
		t.Fatalf("Wait = %d, %v; stdout %q", code, err, out.String())
	}
}

func TestExecSeparateStreamsAndExitCode(t *testing.T) {
	_, c := execServer(t)

	var out, errOut bytes.Buffer
	req := api.InstanceExecPost{Command: []string{"out-err", "3"}, WaitForWS: true}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3, nil", code, err)
	}

	if out.String() != "out\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestExecCommandNotFound(t *testing.T) {
	_, c := execServer(t)

	req := api.InstanceExecPost{Command: []string{"nope"}, WaitForWS: true}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if code != 127 || err == nil || err.Error() != "Command not found" {
		t.Fatalf("Wait = %d, %v; want 127, Command not found", code, err)
	}
}

func TestExecNotRunning(t *testing.T) {
	_, c := execServer(t)

	_, err := c.ExecInstance(testCtx(t), "off", api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true}, client.ExecArgs{})
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecWebsocketOrder(t *testing.T) {
	s, c := execServer(t)

	sess, err := c.ExecInstance(testCtx(t), "c1", api.InstanceExecPost{Command: []string{"exit", "0"}, WaitForWS: true}, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	byFD := map[string]string{}
	for fd, sec := range sess.Operation().Metadata["fds"].(map[string]any) {
		byFD[sec.(string)] = fd
	}

	_, _ = sess.Wait(testCtx(t))

	var order []string
	for _, r := range s.Requests() {
		if strings.HasSuffix(strings.SplitN(r.Path, "?", 2)[0], "/websocket") {
			u, _ := url.Parse(r.Path)
			order = append(order, byFD[u.Query().Get("secret")])
		}
	}

	// control first (as lxc), then the streams in any order.
	if len(order) != 4 || order[0] != "control" || !slices.Contains(order, "0") || !slices.Contains(order, "1") || !slices.Contains(order, "2") {
		t.Errorf("connection order %v, want control, then 0, 1 and 2", order)
	}
}

func TestExecSignal(t *testing.T) {
	_, c := execServer(t)

	var out bytes.Buffer
	req := api.InstanceExecPost{Command: []string{"wait-signal"}, WaitForWS: true}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{Stdout: &out})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	// Not a signal: the server skips it.
	err = sess.Signal(99)
	if err != nil {
		t.Fatalf("Signal: %v", err)
	}

	err = sess.Signal(15)
	if err != nil {
		t.Fatalf("Signal: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 128+15 {
		t.Fatalf("Wait = %d, %v; want 143", code, err)
	}

	if out.String() != "signal 15\n" {
		t.Errorf("the command saw %q, want signal 15 only", out.String())
	}
}

func TestExecInteractiveResize(t *testing.T) {
	_, c := execServer(t)

	// resize-echo writes "ready" on stderr, which a terminal merges.
	out := &lockedBuffer{}
	stdinR, stdinW := io.Pipe()
	defer func() { _ = stdinW.Close() }()

	req := api.InstanceExecPost{Command: []string{"resize-echo"}, WaitForWS: true, Interactive: true, Width: 80, Height: 24}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{Stdin: stdinR, Stdout: out})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	if fds := sess.Operation().Metadata["fds"].(map[string]any); len(fds) != 2 {
		t.Errorf("interactive fds %v", fds)
	}

	waitFor(t, "ready", func() bool { return strings.Contains(out.String(), "ready") })

	err = sess.Resize(120, 40)
	if err != nil {
		t.Fatalf("Resize: %v", err)
	}

	waitFor(t, "resize echo", func() bool { return strings.Contains(out.String(), "window-resize 120x40") })

	_, _ = stdinW.Write([]byte{0x03, 'x', 7})

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 7 {
		t.Fatalf("Wait = %d, %v; want 7", code, err)
	}

	want := "ready\r\nwindow-resize 120x40\r\ngot \"\\x03x\\a\"\r\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestExecCloseKillsCommand(t *testing.T) {
	_, c := execServer(t)

	sess, err := c.ExecInstance(testCtx(t), "c1", api.InstanceExecPost{Command: []string{"sleep"}, WaitForWS: true}, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	id := sess.Operation().ID
	sess.Close()

	// The server kills the command (SIGKILL: 137) and ends the operation.
	var op api.Operation
	waitFor(t, "the operation to end", func() bool {
		op, err = c.GetOperationForTest(testCtx(t), id)
		return err == nil && op.StatusCode.IsFinal()
	})

	if op.StatusCode != api.Success || op.Metadata["return"] != float64(137) {
		t.Errorf("operation %v, return %v; want Success, 137", op.StatusCode, op.Metadata["return"])
	}
}

func TestExecDetached(t *testing.T) {
	_, c := execServer(t)

	sess, err := c.ExecInstance(testCtx(t), "c1", api.InstanceExecPost{Command: []string{"exit", "5"}}, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 5 {
		t.Fatalf("Wait = %d, %v; want 5", code, err)
	}
}

// A client that never connects its streams fails the exec after the
// protocol's 5 s, and the command never runs.
func TestExecConnectTimeout(t *testing.T) {
	_, c := execServer(t)

	start := time.Now()
	op, err := c.StartExecForTest(testCtx(t), "c1", api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}

	err = op.Wait(testCtx(t))
	if err == nil || err.Error() != "Timed out waiting for websockets to connect" {
		t.Fatalf("Wait = %v", err)
	}

	if d := time.Since(start); d < 4900*time.Millisecond {
		t.Errorf("failed after %v, before the 5 s timeout", d)
	}

	if _, ok := op.Metadata["return"]; ok {
		t.Errorf("the command ran: metadata %v", op.Metadata)
	}
}
