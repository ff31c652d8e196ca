package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// TestRemoteStockLXC drives berthd over HTTPS with Debian's lxc 5.0.2 as a remote
// client: a join token issued on the server side, `lxc remote add` with it, the
// everyday commands through the remote, and the client cut off once its certificate
// is removed.
func TestRemoteStockLXC(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := newLXC(t, d.dir)

	// Token form: the client dials the token's address and checks the fingerprint.
	client := newLXC(t, "")
	client.must("remote", "add", "R", d.trustToken("ci"))

	// URL form, the token given as the password.
	other := newLXC(t, "")
	other.must("remote", "add", "R", "https://"+addr, "--accept-certificate", "--password", d.trustToken("other"))

	out := client.must("list", "R:", "--format", "csv")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("lxc list R: on a new daemon: %q", out)
	}

	client.must("launch", "R:debian/12", "R:c")
	if st := d.waitRunning("c"); st != "running" {
		t.Fatalf("container launched over HTTPS: systemd is %q", st)
	}

	out = client.must("list", "R:", "--format", "csv", "-c", "ns")
	if strings.TrimSpace(out) != "c,RUNNING" {
		t.Errorf("lxc list R: %q", out)
	}

	client.must("exec", "R:c", "--", "true")
	out = client.must("exec", "R:c", "--", "cat", "/etc/hostname")
	if out != "c\n" {
		t.Errorf("lxc exec R:c -- cat /etc/hostname: %q", out)
	}

	_, err := client.run("exec", "R:c", "--", "sh", "-c", "exit 3")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("lxc exec exit 3 over HTTPS: %v", err)
	}

	// Interactive, on a pty (script gives lxc one).
	cmd := exec.Command("script", "-qec", client.bin+" exec R:c -- sh -c 'tty; exit 5'", "/dev/null")
	cmd.Env = client.env
	cmd.Stdin = strings.NewReader("")
	var tty bytes.Buffer
	cmd.Stdout = &tty
	_ = cmd.Run()
	if cmd.ProcessState.ExitCode() != 5 || !strings.Contains(tty.String(), "/dev/pts/") {
		t.Errorf("interactive lxc exec over HTTPS: exit %d, output %q", cmd.ProcessState.ExitCode(), tty.String())
	}

	// Files both ways.
	local := filepath.Join(t.TempDir(), "payload")
	payload := bytes.Repeat([]byte("over https\n"), 50000)
	err = os.WriteFile(local, payload, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	client.must("file", "push", local, "R:c/root/payload")
	back := filepath.Join(t.TempDir(), "back")
	client.must("file", "pull", "R:c/root/payload", back)
	got, _ := os.ReadFile(back)
	if !bytes.Equal(got, payload) {
		t.Errorf("file pushed and pulled over HTTPS: %d bytes back of %d", len(got), len(payload))
	}

	client.must("console", "R:c", "--show-log")

	testUntrustedOperationWebsocket(t, d, addr)

	if os.Getenv("BERTH_REMOTE_BENCH") != "" {
		measureRemote(t, client, server)
	}

	// Remove the first client's certificate: its next call is refused, the other
	// client carries on.
	fp := ""
	for _, line := range strings.Split(server.must("config", "trust", "list", "--format", "csv"), "\n") {
		f := strings.Split(line, ",")
		if len(f) > 3 && f[1] == "ci" {
			fp = f[3]
		}
	}

	if fp == "" {
		t.Fatalf("no certificate named ci in:\n%s", server.must("config", "trust", "list"))
	}

	// A command running through the client when its certificate goes: its exec
	// websockets are closed, so lxc returns and the command is killed.
	long := exec.Command(client.bin, "exec", "R:c", "--", "sleep", "600")
	long.Env = client.env
	err = long.Start()
	if err != nil {
		t.Fatal(err)
	}

	exited := make(chan error, 1)
	go func() { exited <- long.Wait() }()
	t.Cleanup(func() { _ = long.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := d.inside("c", "pgrep", "-x", "sleep")
		if strings.TrimSpace(out) != "" {
			break
		}

		if time.Now().After(deadline) {
			t.Fatal("the long command did not start")
		}

		time.Sleep(100 * time.Millisecond)
	}

	server.must("config", "trust", "remove", fp)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("lxc exec still running 10 s after its certificate was removed")
	}

	deadline = time.Now().Add(10 * time.Second)
	for {
		out, _ := d.inside("c", "pgrep", "-x", "sleep")
		if strings.TrimSpace(out) == "" {
			break
		}

		if time.Now().After(deadline) {
			t.Error("the removed client's command still runs in the container")
			break
		}

		time.Sleep(100 * time.Millisecond)
	}

	out, err = client.run("list", "R:")
	if err == nil {
		t.Errorf("lxc list R: after its certificate was removed: %s", out)
	}

	other.must("exec", "R:c", "--", "true")
}

// testUntrustedOperationWebsocket: a caller without a certificate may connect an
// operation's websocket with its secret, and nothing else of the operation.
func testUntrustedOperationWebsocket(t *testing.T, d *daemon, addr string) {
	code, env := d.raw("POST", "/1.0/instances/c/exec", strings.NewReader(`{"command":["sleep","30"],"wait-for-websocket":true,"interactive":false}`))
	if code != http.StatusAccepted {
		t.Fatalf("exec: %d %s", code, env.Error)
	}

	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	fds, _ := op.Metadata["fds"].(map[string]any)
	secret, _ := fds["control"].(string)
	if secret == "" {
		t.Fatalf("exec operation without a control secret: %v", op.Metadata)
	}

	cfg := tlsConfigFor(d.serverCert())
	anon := newHTTPSClient(t, addr, cfg)
	if code, _ := anon.do("GET", "/1.0/operations/"+op.ID, nil); code != http.StatusForbidden {
		t.Errorf("untrusted GET of the operation: %d, want 403", code)
	}

	dialer := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	base := "wss://" + addr + "/1.0/operations/" + op.ID + "/websocket?secret="
	_, resp, err := dialer.Dial(base+strings.Repeat("0", 64), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("untrusted websocket with a wrong secret: %v, %v", err, resp)
	}

	conn, _, err := dialer.Dial(base+url.QueryEscape(secret), nil)
	if err != nil {
		t.Fatalf("untrusted websocket with the secret: %v", err)
	}

	_ = conn.Close() // the command is killed: its control socket went away
}

// measureRemote logs the median of ten runs of `lxc list` and `lxc exec -- true`
// over HTTPS and over the unix socket.
func measureRemote(t *testing.T, client, server *lxcTool) {
	timeIt := func(l *lxcTool, args ...string) time.Duration {
		var ds []time.Duration
		for i := 0; i < 10; i++ {
			start := time.Now()
			l.must(args...)
			ds = append(ds, time.Since(start))
		}

		return median(ds)
	}

	t.Logf("median of 10: lxc list R: %v (unix socket: %v); lxc exec R:c -- true %v (unix socket: %v)",
		timeIt(client, "list", "R:"), timeIt(server, "list"),
		timeIt(client, "exec", "R:c", "--", "true"), timeIt(server, "exec", "c", "--", "true"))
}
