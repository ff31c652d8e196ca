package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client/internal/testdaemon"
	"github.com/berth-dev/berth/shared/api"
)

// withStdin makes os.Stdin read data (nil: an empty pipe closed at once)
// while the test runs; cobra's InOrStdin hands it to the commands.
func withStdin(t *testing.T, data []byte) {
	t.Helper()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}

	go func() {
		_, _ = w.Write(data)
		_ = w.Close()
	}()

	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() {
		os.Stdin = old
		_ = r.Close()
	})
}

// execFake is a daemon with c1 running. The commands the fake instance knows
// are in lxd/fake_exec_test.go.
func execFake(t *testing.T) *testdaemon.Daemon {
	t.Helper()

	return fakeDaemon(t, testdaemon.Config{Instances: withStatus("Running", "c1"), ConsoleLog: "[  OK  ] Reached target multi-user.target\n"})
}

// execRequests returns the bodies of the exec requests s received.
func execRequests(t *testing.T, s *testdaemon.Daemon) []api.InstanceExecPost {
	t.Helper()

	var out []api.InstanceExecPost
	for _, r := range s.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/exec") {
			req := api.InstanceExecPost{}
			err := json.Unmarshal(r.Body, &req)
			if err != nil {
				t.Fatalf("decoding %s: %v", r.Body, err)
			}

			out = append(out, req)
		}
	}

	return out
}

func TestExecModeSelection(t *testing.T) {
	cases := []struct {
		o                   execOptions
		stdinTTY, stdoutTTY bool
		want                bool
		err                 string
	}{
		{o: execOptions{mode: "auto"}, stdinTTY: true, stdoutTTY: true, want: true},
		{o: execOptions{mode: "auto"}, stdinTTY: true, stdoutTTY: false, want: false},
		{o: execOptions{mode: "auto"}, stdinTTY: false, stdoutTTY: true, want: false},
		{o: execOptions{mode: "auto", forceInteractive: true}, want: true},
		{o: execOptions{mode: "auto", forceNonInteractive: true}, stdinTTY: true, stdoutTTY: true, want: false},
		{o: execOptions{mode: "auto", disableStdin: true}, stdinTTY: true, stdoutTTY: true, want: false},
		{o: execOptions{mode: "auto", disableStdin: true, forceInteractive: true}, want: true},
		{o: execOptions{mode: "interactive"}, want: true},
		{o: execOptions{mode: "non-interactive"}, stdinTTY: true, stdoutTTY: true, want: false},
		{o: execOptions{mode: "auto", forceInteractive: true, forceNonInteractive: true}, err: "-t and -T"},
		{o: execOptions{mode: "interactive", forceNonInteractive: true}, err: "--mode"},
		{o: execOptions{mode: "sometimes"}, err: "invalid --mode"},
	}

	for i, c := range cases {
		got, err := c.o.interactive(c.stdinTTY, c.stdoutTTY)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("case %d: err %v, want %q", i, err, c.err)
			}

			continue
		}

		if err != nil || got != c.want {
			t.Errorf("case %d: got %v, %v; want %v", i, got, err, c.want)
		}
	}
}

func TestExecEnv(t *testing.T) {
	env, err := execEnv("xterm-256color", []string{"A=1", "B=x=y", "EMPTY="})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"TERM": "xterm-256color", "A": "1", "B": "x=y", "EMPTY": ""}
	if len(env) != len(want) {
		t.Errorf("env %v", env)
	}

	for k, v := range want {
		if env[k] != v {
			t.Errorf("env[%s] = %q, want %q", k, env[k], v)
		}
	}

	env, _ = execEnv("", nil)
	if _, ok := env["TERM"]; ok {
		t.Error("TERM sent although unset")
	}

	for _, bad := range []string{"NOEQUALS", "=v"} {
		_, err = execEnv("", []string{bad})
		if err == nil {
			t.Errorf("--env %q accepted", bad)
		}
	}
}

func TestExecPipesStdinAndFlags(t *testing.T) {
	s := execFake(t)
	t.Setenv("TERM", "vt100")

	in := make([]byte, 1<<20)
	_, _ = rand.Read(in)
	withStdin(t, in)

	out, errOut, code := runCLI(t, s.Socket, "exec", "c1", "--user", "1000", "--group", "100", "--cwd", "/tmp", "--env", "K=V", "--", "cat")
	if code != 0 || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}

	if out != string(in) {
		t.Fatalf("stdout: %d bytes, want the %d sent", len(out), len(in))
	}

	reqs := execRequests(t, s)
	if len(reqs) != 1 {
		t.Fatalf("%d exec requests", len(reqs))
	}

	r := reqs[0]
	if strings.Join(r.Command, " ") != "cat" || !r.WaitForWS || r.Interactive || r.User != 1000 || r.Group != 100 ||
		r.Cwd != "/tmp" || r.Environment["TERM"] != "vt100" || r.Environment["K"] != "V" || r.Width != 0 {
		t.Errorf("request %+v", r)
	}
}

func TestExecExitCodes(t *testing.T) {
	s := execFake(t)

	withStdin(t, nil)
	out, errOut, code := runCLI(t, s.Socket, "exec", "c1", "--", "out-err", "3")
	if code != 3 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exit 3: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	withStdin(t, nil)
	_, errOut, code = runCLI(t, s.Socket, "exec", "c1", "--", "missing")
	if code != 127 || errOut != "Error: Command not found\n" {
		t.Errorf("not found: code %d, stderr %q", code, errOut)
	}

	// Usage and server errors are one line and exit 1.
	_, errOut, code = runCLI(t, s.Socket, "exec", "nope", "--", "true")
	checkOneError(t, errOut, code, `Instance "nope" not found`)

	_, errOut, code = runCLI(t, s.Socket, "exec", "c1", "-t", "-T", "--", "true")
	checkOneError(t, errOut, code, "You can't pass -t and -T at the same time")

	_, errOut, code = runCLI(t, s.Socket, "exec", "c1", "--env", "X", "--", "true")
	checkOneError(t, errOut, code, `Bad key=value pair in --env: "X"`)

	_, errOut, code = runCLI(t, s.Socket, "exec", "c1")
	if code != 1 || !strings.HasPrefix(errOut, "Error: Invalid number of arguments") {
		t.Errorf("missing command: code %d, stderr %q", code, errOut)
	}
}

func TestExecForcedInteractive(t *testing.T) {
	s := execFake(t)

	// tty-hello writes on stderr, which the terminal merges into its stream.
	withStdin(t, nil)
	out, errOut, code := runCLI(t, s.Socket, "exec", "-t", "c1", "--", "tty-hello")
	if code != 0 || out != "on the tty\r\n" || errOut != "" {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
	}

	if r := execRequests(t, s); len(r) != 1 || !r[0].Interactive {
		t.Errorf("requests %+v", r)
	}
}

func TestExecDisableStdin(t *testing.T) {
	s := execFake(t)
	withStdin(t, []byte("must not be sent"))

	out, _, code := runCLI(t, s.Socket, "exec", "-n", "c1", "--", "cat")
	if code != 0 || out != "" {
		t.Errorf("code %d, stdout %q", code, out)
	}
}

func TestExecForwardsSignals(t *testing.T) {
	s := execFake(t)

	go func() {
		// Once the session is up (its control socket connected), as a
		// user's Ctrl+C would come.
		waitForRequests(t, s, 4)

		// Caught by berth exec and relayed, not fatal to the test binary.
		_ = syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	}()

	withStdin(t, nil)
	out, errOut, code := runCLI(t, s.Socket, "exec", "c1", "--", "wait-signal")
	if code != 128+int(syscall.SIGUSR1) {
		t.Errorf("code %d (stderr %q), want %d", code, errOut, 128+int(syscall.SIGUSR1))
	}

	if want := fmt.Sprintf("signal %d\n", syscall.SIGUSR1); out != want {
		t.Errorf("the command saw %q, want %q", out, want)
	}
}

func TestShellCommand(t *testing.T) {
	s := execFake(t) // su and sh exit 0

	withStdin(t, nil)
	_, errOut, code := runCLI(t, s.Socket, "shell", "c1")
	withStdin(t, nil)
	_, errOut2, code2 := runCLI(t, s.Socket, "shell", "c1", "--user", "1000")
	if code != 0 || code2 != 0 {
		t.Fatalf("codes %d %d, stderr %q %q", code, code2, errOut, errOut2)
	}

	reqs := execRequests(t, s)
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}

	if strings.Join(reqs[0].Command, " ") != "su -l" {
		t.Errorf("root shell runs %q", reqs[0].Command)
	}

	c := reqs[1].Command
	if len(c) != 5 || c[0] != "sh" || c[2] != loginAs || c[4] != "1000" {
		t.Errorf("user shell runs %q", c)
	}
}

func TestConsoleNeedsTerminal(t *testing.T) {
	s := execFake(t)
	withStdin(t, nil)

	_, errOut, code := runCLI(t, s.Socket, "console", "c1")
	checkOneError(t, errOut, code, "The console needs a terminal on standard input (use --show-log to print the log)")
}

func TestConsoleShowLog(t *testing.T) {
	s := execFake(t)

	out, errOut, code := runCLI(t, s.Socket, "console", "c1", "--show-log")
	if code != 0 || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}

	if out != "\nConsole log:\n\n[  OK  ] Reached target multi-user.target\n\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestDetachReader(t *testing.T) {
	cases := []struct {
		chunks []string
		want   string
		detach bool
	}{
		{chunks: []string{"ls\r"}, want: "ls\r"},
		{chunks: []string{"ab\x01q cd"}, want: "ab\x01", detach: true},
		{chunks: []string{"ab\x01", "qxx"}, want: "ab\x01", detach: true},
		{chunks: []string{"\x01a", "q"}, want: "\x01aq"},
		{chunks: []string{"\x01\x01q"}, want: "\x01\x01", detach: true},
	}

	for i, c := range cases {
		detached := false
		d := &detachReader{r: &chunkReader{chunks: c.chunks}, detach: func() { detached = true }}

		got, err := io.ReadAll(d)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
		}

		if string(got) != c.want || detached != c.detach {
			t.Errorf("case %d: got %q detach=%v, want %q detach=%v", i, got, detached, c.want, c.detach)
		}
	}
}

// waitForRequests waits until s has received n websocket connections.
func waitForRequests(t *testing.T, s *testdaemon.Daemon, n int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		count := 0
		for _, r := range s.Requests() {
			if strings.Contains(r.Path, "/websocket?") {
				count++
			}
		}

		if count >= n {
			return
		}

		time.Sleep(5 * time.Millisecond)
	}

	t.Errorf("fewer than %d websockets connected", n)
}

// chunkReader returns one chunk per Read.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}

	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]

	return n, nil
}
