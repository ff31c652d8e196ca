package integration

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoteCLIAgainstBerthd is the berth CLI as an HTTPS remote client of berthd: the
// remote bookkeeping of testRemoteCLI (as against LXD), then containers driven through
// the remote (launch, exec with exit codes, streams and a pty, files both ways, the
// console) and the client cut off once its certificate is removed on the server.
func TestRemoteCLIAgainstBerthd(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()

	t.Run("remote", func(t *testing.T) {
		testRemoteCLI(t, remoteServer{url: "https://" + addr, token: d.berthToken, createEmpty: d.createEmpty})
	})

	t.Run("containers", func(t *testing.T) {
		testRemoteCLIContainers(t, d)
	})
}

// serverBerth runs the CLI on the server side: the local remote is the daemon's unix
// socket, and the client configuration is a directory of the test's own.
func (d *daemon) serverBerth(t *testing.T) berthConf {
	return berthConf{dir: filepath.Join(t.TempDir(), "server-conf"), env: []string{"BERTH_DIR=" + d.dir}}
}

// berthToken makes a join token with `berth config trust add NAME -q` over the unix socket.
func (d *daemon) berthToken(t *testing.T, name string) string {
	t.Helper()
	out := strings.TrimSpace(d.serverBerth(t).ok(t, "config", "trust", "add", name, "-q"))
	if out == "" || strings.ContainsAny(out, " \n") {
		t.Fatalf("berth config trust add %s -q printed %q, want the token alone", name, out)
	}

	return out
}

// createEmpty creates an instance that is never started. berthd has no "none" source
// yet (an instance without a root filesystem): it is made from the image, unstarted.
func (d *daemon) createEmpty(t *testing.T, name string) {
	t.Helper()
	d.serverBerth(t).ok(t, "init", "debian/12", name)
}

func testRemoteCLIContainers(t *testing.T, d *daemon) {
	server := d.serverBerth(t)
	b := newBerthConf(t)
	b.ok(t, "remote", "add", "R", d.berthToken(t, "cli"))

	// Launch from the remote's own image store.
	b.ok(t, "launch", "debian/12", "R:c")
	if st := d.waitRunning("c"); st != "running" {
		t.Fatalf("container launched over HTTPS: systemd is %q", st)
	}

	if out := b.ok(t, "list", "R:", "-f", "csv", "-c", "ns"); strings.TrimSpace(out) != "c,RUNNING" {
		t.Errorf("berth list R: %q", out)
	}

	// exec: exit codes, separate streams, stdin, a missing command.
	out, errOut, code := b.run(t, "", "exec", "R:c", "--", "true")
	if out != "" || errOut != "" || code != 0 {
		t.Errorf("exec R:c -- true: stdout %q, stderr %q, code %d", out, errOut, code)
	}

	out, errOut, code = b.run(t, "", "exec", "R:c", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errOut != "err\n" || code != 3 {
		t.Errorf("exec over HTTPS: stdout %q, stderr %q, code %d; want out, err, 3", out, errOut, code)
	}

	in := make([]byte, 1<<20)
	_, _ = rand.Read(in)
	out, errOut, code = b.run(t, string(in), "exec", "R:c", "--", "cat")
	if code != 0 || errOut != "" || out != string(in) {
		t.Errorf("exec R:c -- cat with 1 MiB in: code %d, stderr %q, %d bytes back (intact: %v)", code, errOut, len(out), out == string(in))
	}

	_, errOut, code = b.run(t, "", "exec", "R:c", "--", "/no/such/command")
	if code != 127 || !strings.HasPrefix(errOut, "Error: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exec of a missing command: code %d, stderr %q; want 127 and one Error line", code, errOut)
	}

	// Interactive, on a pty: the terminal's size and a resize reach the remote pty.
	s := b.startOnPty(t, "exec", "R:c", "--", "sh")
	s.send("tty; stty size\n")
	at := s.expect(0, "/dev/pts/", 10*time.Second)
	s.expect(at, "24 80", 5*time.Second)
	s.send("exit 5\n")
	if code := s.wait(10 * time.Second); code != 5 {
		t.Errorf("interactive exec over HTTPS: exit code %d, want 5", code)
	}

	// Files both ways, with a mode and owner set on push.
	dir := t.TempDir()
	local := filepath.Join(dir, "payload")
	payload := bytes.Repeat([]byte("over https\n"), 50000)
	err := os.WriteFile(local, payload, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	b.ok(t, "file", "push", "--mode", "0640", "--uid", "1000", "--gid", "1000", local, "R:c/root/payload")
	if st, _ := d.inside("c", "stat", "-c", "%a %u:%g %s", "/root/payload"); strings.TrimSpace(st) != "640 1000:1000 550000" {
		t.Errorf("pushed file inside: %q, want 640 1000:1000 550000", st)
	}

	back := filepath.Join(dir, "back")
	b.ok(t, "file", "pull", "R:c/root/payload", back)
	got, _ := os.ReadFile(back)
	if !bytes.Equal(got, payload) {
		t.Errorf("file pushed and pulled over HTTPS: %d bytes back of %d", len(got), len(payload))
	}

	// A tree both ways.
	tree := filepath.Join(dir, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("deep\n"), 0o600))
	b.ok(t, "file", "push", "-r", tree, "R:c/srv/")
	pulled := filepath.Join(dir, "pulled")
	must(t, os.Mkdir(pulled, 0o755))
	b.ok(t, "file", "pull", "-r", "R:c/srv/tree", pulled)
	if got, _ := os.ReadFile(filepath.Join(pulled, "tree", "sub", "f")); string(got) != "deep\n" {
		t.Errorf("recursive push and pull over HTTPS: %q", got)
	}

	// The console: its log, and attached on a pty up to getty's prompt.
	out = b.ok(t, "console", "R:c", "--show-log")
	if !strings.HasPrefix(out, "\nConsole log:\n\n") || !strings.Contains(out, "Reached target") {
		t.Errorf("console R:c --show-log: %q", tail(out, 10))
	}

	s = b.startOnPty(t, "console", "R:c")
	at = s.expect(0, "To detach from the console, press: <ctrl>+a q", 10*time.Second)
	s.send("\r")
	s.expect(at, "login:", 10*time.Second)
	s.send("\x01q")
	if code := s.wait(5 * time.Second); code != 0 {
		t.Errorf("console detach over HTTPS: exit code %d, want 0", code)
	}

	// The certificate removed on the server: a running exec is cut and its command
	// killed, and the next call is refused in one readable line.
	fp := trustedFingerprint(t, server, "cli")
	long := exec.Command(berthBin, "exec", "R:c", "--", "sleep", "600")
	long.Env = b.environ()
	var longErr bytes.Buffer
	long.Stderr = &longErr
	must(t, long.Start())
	exited := make(chan struct{})
	go func() { _ = long.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = long.Process.Kill()
		<-exited
	})

	waitForInside(t, d, "c", "sleep 600")
	server.ok(t, "config", "trust", "remove", fp)
	select {
	case <-exited:
		t.Logf("berth exec cut by the certificate's removal: exit %d, stderr %q", long.ProcessState.ExitCode(), longErr.String())
		if long.ProcessState.ExitCode() == 0 || !strings.HasPrefix(longErr.String(), "Error: ") || strings.Count(longErr.String(), "\n") != 1 {
			t.Errorf("berth exec cut by the certificate's removal: exit %d, stderr %q; want a failure and one Error line", long.ProcessState.ExitCode(), longErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("berth exec still running 10 s after its certificate was removed")
	}

	deadline := time.Now().Add(10 * time.Second)
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

	const refused = "not authorized: the server doesn't trust this client's certificate"
	b.fails(t, "", refused, "list", "R:")
	b.fails(t, "", refused, "exec", "R:c", "--", "true")
}

// trustedFingerprint finds a trusted certificate's fingerprint by its name.
func trustedFingerprint(t *testing.T, server berthConf, name string) string {
	t.Helper()
	out := server.ok(t, "config", "trust", "list", "-f", "csv")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) > 3 && f[1] == name {
			return f[3]
		}
	}

	t.Fatalf("no certificate named %s in:\n%s", name, out)
	return ""
}
