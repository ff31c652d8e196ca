package integration

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestConsole attaches to /dev/console over the websocket protocol and with
// Debian's lxc, and reads and clears the console log.
func TestConsole(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "constest")

	if st := d.waitRunning("constest"); st != "running" && st != "degraded" {
		t.Fatalf("systemd is %q", st)
	}

	c := d.api()

	t.Run("LogHasBoot", func(t *testing.T) {
		c.t = t

		code, log := c.rawGet("/1.0/instances/constest/console")
		if code != http.StatusOK {
			t.Fatalf("GET console: %d", code)
		}

		for _, want := range []string{"systemd", "Welcome to", "Reached target"} {
			if !bytes.Contains(log, []byte(want)) {
				t.Errorf("console log lacks %q:\n%s", want, log)
			}
		}
	})

	t.Run("AttachLoginResizeDetach", func(t *testing.T) {
		c.t = t

		op := c.startOp("/1.0/instances/constest/console", api.InstanceConsolePost{Width: 100, Height: 30, Type: "console"})

		fds := opFds(t, op)
		if len(fds) != 2 || fds["0"] == "" || fds["control"] == "" {
			t.Fatalf("console fds %v", fds)
		}

		conns := c.streams(op)
		term := newTermReader(conns["0"])

		// One attached client at a time.
		code, env := c.do("POST", "/1.0/instances/constest/console", api.InstanceConsolePost{Type: "console"})
		if code != http.StatusConflict {
			t.Errorf("second attach: %d %q", code, env.Error)
		}

		err := conns["0"].WriteMessage(websocket.BinaryMessage, []byte("\r"))
		if err != nil {
			t.Fatal(err)
		}

		term.expect(t, 0, "login: ", 15*time.Second)

		// The console pty has the size we asked for, then the new one.
		if got := consoleSize(t, c); got != "30 100" {
			t.Errorf("console size %q, want 30 100", got)
		}

		sendControl(t, conns["control"], api.InstanceExecControl{Command: "window-resize", Args: map[string]string{"width": "120", "height": "40"}})

		deadline := time.Now().Add(5 * time.Second)
		for consoleSize(t, c) != "40 120" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}

		if got := consoleSize(t, c); got != "40 120" {
			t.Errorf("after resize: %q", got)
		}

		// Detach as lxc does.
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "Detaching from console")
		_ = conns["control"].WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = conns["control"].Close()

		done := c.wait(op.ID)
		if done.Status != "Success" {
			t.Errorf("console op ended %s %q", done.Status, done.Err)
		}

		select {
		case <-term.done:
		case <-time.After(5 * time.Second):
			t.Fatal("console stream did not end after detach")
		}

		if !strings.HasSuffix(term.String(), "\n\r") {
			t.Errorf("no goodbye at the end of %q", term.String())
		}

		// Released: attaching again works.
		op = c.startOp("/1.0/instances/constest/console", api.InstanceConsolePost{Type: "console"})
		conns = c.streams(op)

		_ = conns["control"].Close()

		if done := c.wait(op.ID); done.Status != "Success" {
			t.Errorf("re-attach ended %s %q", done.Status, done.Err)
		}
	})

	t.Run("NeverConnectedReleases", func(t *testing.T) {
		c.t = t

		op := c.startOp("/1.0/instances/constest/console", api.InstanceConsolePost{Type: "console"})
		done := c.wait(op.ID)

		if done.Status != "Failure" || done.Err != "Timed out waiting for websockets to connect" {
			t.Errorf("got %s %q", done.Status, done.Err)
		}

		op = c.startOp("/1.0/instances/constest/console", api.InstanceConsolePost{Type: "console"})
		conns := c.streams(op)
		_ = conns["control"].Close()
		_ = c.wait(op.ID)
	})

	t.Run("StockLXC", func(t *testing.T) {
		c.t = t
		testStockLXCConsole(t, d)
	})

	t.Run("Clear", func(t *testing.T) {
		c.t = t

		code, env := c.do("DELETE", "/1.0/instances/constest/console", nil)
		if code != http.StatusOK {
			t.Fatalf("DELETE console: %d %s", code, env.Error)
		}

		_, log := c.rawGet("/1.0/instances/constest/console")
		if bytes.Contains(log, []byte("Welcome to")) {
			t.Errorf("log after clearing:\n%s", log)
		}
	})

	t.Run("StoppedKeepsLog", func(t *testing.T) {
		c.t = t

		d.berth("restart", "constest")
		d.waitRunning("constest")
		d.berth("stop", "constest")

		code, log := c.rawGet("/1.0/instances/constest/console")
		if code != http.StatusOK || !bytes.Contains(log, []byte("Welcome to")) {
			t.Errorf("stopped instance's console log (%d):\n%s", code, log)
		}

		code, _ = c.do("POST", "/1.0/instances/constest/console", api.InstanceConsolePost{Type: "console"})
		if code != http.StatusBadRequest {
			t.Errorf("attach to a stopped instance: %d", code)
		}

		code, _ = c.do("DELETE", "/1.0/instances/constest/console", nil)
		_, log = c.rawGet("/1.0/instances/constest/console")

		if code != http.StatusOK || len(log) != 0 {
			t.Errorf("clearing a stopped instance's log: %d, %d bytes left", code, len(log))
		}
	})
}

// consoleSize reads the console's terminal size from inside.
func consoleSize(t *testing.T, c *apiClient) string {
	t.Helper()

	return strings.TrimSpace(c.sh("constest", "stty size < /dev/console"))
}

// testStockLXCConsole runs lxc console --show-log, and lxc console on a pty
// with Ctrl-a q.
func testStockLXCConsole(t *testing.T, d *daemon) {
	bin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

	conf := t.TempDir()
	env := append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)

	list := exec.Command(bin, "list")
	list.Env = env
	_ = list.Run()

	show := exec.Command(bin, "console", "constest", "--show-log")
	show.Env = env

	out, err := show.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Console log:") || !strings.Contains(string(out), "systemd") {
		t.Errorf("lxc console --show-log: %v\n%s", err, out)
	}

	if _, err := exec.LookPath("script"); err != nil {
		return
	}

	// lxc checks only the first byte of each read for Ctrl-a and q, so they
	// must arrive separately.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("script", "-qec", bin+" console constest", "/dev/null")
	cmd.Env = env
	cmd.Stdin = pr

	var o bytes.Buffer

	cmd.Stdout = &o

	err = cmd.Start()
	_ = pr.Close()

	if err != nil {
		t.Fatal(err)
	}

	for _, s := range []string{"\r", "\x01", "q"} {
		time.Sleep(700 * time.Millisecond)
		_, _ = pw.WriteString(s)
	}

	done := make(chan error, 1)

	go func() { done <- cmd.Wait() }()

	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("lxc console did not detach:\n%q", o.String())
	}

	_ = pw.Close()

	if err != nil || !strings.Contains(o.String(), "login: ") {
		t.Errorf("lxc console: %v\n%q", err, o.String())
	}
}
