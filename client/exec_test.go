package client_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/internal/fakeapi"
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

func execServer(t *testing.T) (*fakeapi.Server, *client.Client) {
	t.Helper()

	s := fakeapi.New(t)
	s.AddInstance("c1", "Running")

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
	s, c := execServer(t)
	s.ExecFunc = func(p *fakeapi.ExecProcess) int {
		_, _ = io.WriteString(p.Stdout, "out\n")
		_, _ = io.WriteString(p.Stderr, "err\n")

		return 3
	}

	var out, errOut bytes.Buffer
	req := api.InstanceExecPost{Command: []string{"sh", "-c", "x"}, WaitForWS: true}
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
	s, c := execServer(t)
	s.AddInstance("off", "Stopped")

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
	s, c := execServer(t)

	started := make(chan struct{})
	s.ExecFunc = func(p *fakeapi.ExecProcess) int {
		close(started)
		return fakeapi.BuiltinExec(p)
	}

	req := api.InstanceExecPost{Command: []string{"wait-signal"}, WaitForWS: true}
	sess, err := c.ExecInstance(testCtx(t), "c1", req, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	<-started
	err = sess.Signal(15)
	if err != nil {
		t.Fatalf("Signal: %v", err)
	}

	code, err := sess.Wait(testCtx(t))
	if err != nil || code != 128+15 {
		t.Fatalf("Wait = %d, %v; want 143", code, err)
	}

	msgs := s.ControlMessages()
	if len(msgs) != 1 || msgs[0].Command != "signal" || msgs[0].Signal != 15 {
		t.Errorf("control messages %+v", msgs)
	}
}

func TestExecInteractiveResize(t *testing.T) {
	s, c := execServer(t)
	s.ExecFunc = func(p *fakeapi.ExecProcess) int {
		// A terminal: stderr is the same stream as stdout.
		_, _ = io.WriteString(p.Stderr, "ready\r\n")
		m := <-p.Control
		_, _ = fmt.Fprintf(p.Stdout, "%s %sx%s\r\n", m.Command, m.Args["width"], m.Args["height"])

		buf := make([]byte, 3)
		_, _ = io.ReadFull(p.Stdin, buf)
		_, _ = fmt.Fprintf(p.Stdout, "got %q\r\n", buf)

		return int(buf[2])
	}

	out := &lockedBuffer{}
	stdinR, stdinW := io.Pipe()
	defer func() { _ = stdinW.Close() }()

	req := api.InstanceExecPost{Command: []string{"sh"}, WaitForWS: true, Interactive: true, Width: 80, Height: 24}
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
	s, c := execServer(t)

	started := make(chan struct{})
	killed := make(chan struct{})
	s.ExecFunc = func(p *fakeapi.ExecProcess) int {
		close(started)
		<-p.Killed
		close(killed)

		return 137
	}

	sess, err := c.ExecInstance(testCtx(t), "c1", api.InstanceExecPost{Command: []string{"sleep"}, WaitForWS: true}, client.ExecArgs{})
	if err != nil {
		t.Fatalf("ExecInstance: %v", err)
	}

	<-started
	sess.Close()

	select {
	case <-killed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the client go away")
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
