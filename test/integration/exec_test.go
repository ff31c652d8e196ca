package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestExec drives POST /1.0/instances/{name}/exec with raw websockets and
// with Debian's lxc, against one running container.
func TestExec(t *testing.T) {
	d := startDaemon(t)
	d.berth("launch", "debian/12", "exectest")

	if st := d.waitRunning("exectest"); st != "running" && st != "degraded" {
		t.Fatalf("systemd is %q", st)
	}

	c := d.api()

	t.Run("StreamsAndExitCodes", func(t *testing.T) {
		c.t = t

		r := c.exec("exectest", api.InstanceExecPost{Command: []string{"sh", "-c", "echo out; echo err >&2"}}, nil)
		if r.stdout != "out\n" || r.stderr != "err\n" || r.ret != 0 || r.op.Status != "Success" {
			t.Errorf("got stdout %q stderr %q return %d status %s", r.stdout, r.stderr, r.ret, r.op.Status)
		}

		for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -INT $$": 130, "kill -TERM $$": 143} {
			r := c.exec("exectest", api.InstanceExecPost{Command: []string{"sh", "-c", script}}, nil)
			if r.ret != want || r.op.Status != "Success" {
				t.Errorf("%q: return %d (%s), want %d", script, r.ret, r.op.Status, want)
			}
		}

		r = c.exec("exectest", api.InstanceExecPost{Command: []string{"no-such-command"}}, nil)
		if r.ret != 127 || r.op.Status != "Failure" || r.op.Err != "Command not found" {
			t.Errorf("missing command: return %d, %s %q", r.ret, r.op.Status, r.op.Err)
		}

		r = c.exec("exectest", api.InstanceExecPost{Command: []string{"/etc/hostname"}}, nil)
		if r.ret != 126 || r.op.Err != "Command not executable" {
			t.Errorf("non-executable: return %d, %s %q", r.ret, r.op.Status, r.op.Err)
		}
	})

	t.Run("Stdin1MiB", func(t *testing.T) {
		c.t = t

		in := make([]byte, 1<<20)
		for i := range in {
			in[i] = byte(rand.IntN(256))
		}

		r := c.exec("exectest", api.InstanceExecPost{Command: []string{"cat"}}, in)
		if r.ret != 0 || !bytes.Equal([]byte(r.stdout), in) {
			t.Fatalf("cat returned %d and %d bytes, want the same %d bytes", r.ret, len(r.stdout), len(in))
		}
	})

	t.Run("UserCwdEnv", func(t *testing.T) {
		c.t = t
		c.sh("exectest", "id u1 >/dev/null 2>&1 || useradd -m -u 1000 -G users u1")

		r := c.exec("exectest", api.InstanceExecPost{
			Command: []string{"sh", "-c", "id -u; id -g; id -G; pwd; echo $HOME $USER"},
			User:    1000, Group: 1000, Cwd: "/tmp",
		}, nil)

		want := "1000\n1000\n1000 100\n/tmp\n/home/u1 u1\n"
		if r.stdout != want {
			t.Errorf("as user 1000: got %q (stderr %q), want %q", r.stdout, r.stderr, want)
		}

		// Root's defaults, as LXD: cwd /root, HOME, USER, PATH, LANG; TERM
		// and the rest from the request.
		r = c.exec("exectest", api.InstanceExecPost{
			Command:     []string{"sh", "-c", "pwd; readlink /proc/self/cwd; echo $HOME $USER $PATH $LANG $TERM $FOO"},
			Environment: map[string]string{"TERM": "xterm-256color", "FOO": "bar"},
		}, nil)

		want = "/root\n/root\n/root root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin C.UTF-8 xterm-256color bar\n"
		if r.stdout != want {
			t.Errorf("defaults: got %q, want %q", r.stdout, want)
		}
	})

	t.Run("OnlyStdioFds", func(t *testing.T) {
		c.t = t

		// ls is the exec'd process itself; fd 3 is the directory it lists.
		out := c.sh("exectest", "exec ls -l /proc/self/fd")

		var fds []string

		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 11 || f[0] == "total" {
				continue
			}

			fd, target := f[8], f[10]
			fds = append(fds, fd)

			switch {
			case fd == "3" && strings.HasSuffix(target, "/fd") && strings.HasPrefix(target, "/proc/"):
			case (fd == "0" || fd == "1" || fd == "2") && strings.HasPrefix(target, "pipe:"):
			default:
				t.Errorf("unexpected fd %s -> %s", fd, target)
			}
		}

		if strings.Join(fds, ",") != "0,1,2,3" {
			t.Errorf("fds %v, want 0,1,2 and ls's own 3:\n%s", fds, out)
		}
	})

	t.Run("SameNamespacesAndCgroupsAsInit", func(t *testing.T) {
		c.t = t
		init := d.initPID("exectest")

		nsList := []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts", "time"}
		out := c.sh("exectest", "for n in "+strings.Join(nsList, " ")+"; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup")
		lines := strings.Split(out, "\n")

		for i, n := range nsList {
			want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", init, n))
			if lines[i] != want {
				t.Errorf("ns %s: %s, init has %s", n, lines[i], want)
			}
		}

		// Inside, the cgroup file of init (read through the container's
		// own /proc) must be the same text.
		initCg := c.sh("exectest", "cat /proc/1/cgroup")
		if got := strings.Join(lines[len(nsList):], "\n"); got != initCg {
			t.Errorf("/proc/self/cgroup:\n%s\ninit's:\n%s", got, initCg)
		}

	})

	t.Run("HostCgroupsFromOutside", func(t *testing.T) {
		c.t = t
		init := d.initPID("exectest")
		op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{Command: []string{"sleep", "1002"}, WaitForWS: true})
		conns := c.streams(op)

		pid := waitForHostProcess(t, "sleep\x001002", 5*time.Second)
		got, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		want, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))

		if !bytes.Equal(got, want) {
			t.Errorf("host view of cgroups:\n%s\ninit:\n%s", got, want)
		}

		// The binary that entered the container was the sealed copy: the
		// command now runs sleep, not anything from the host.
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if exe != "/usr/bin/sleep" {
			t.Errorf("exe %q", exe)
		}

		sendControl(t, conns["control"], api.InstanceExecControl{Command: "signal", Signal: 15})
		done := c.wait(op.ID)

		if opReturn(t, done) != 143 {
			t.Errorf("after SIGTERM via control: %v", done.Metadata)
		}
	})

	t.Run("ExecServerOutOfSight", func(t *testing.T) {
		c.t = t
		testExecServerOutOfSight(t, d, c)
	})

	t.Run("Interactive", func(t *testing.T) {
		c.t = t
		testInteractive(t, c)
	})

	t.Run("ClientVanishes", func(t *testing.T) {
		c.t = t

		op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{Command: []string{"sleep", "1001"}, WaitForWS: true})
		conns := c.streams(op)
		pid := waitForHostProcess(t, "sleep\x001001", 5*time.Second)

		// Drop every connection without a close frame.
		for _, conn := range conns {
			_ = conn.UnderlyingConn().Close()
		}

		done := c.wait(op.ID)
		if !done.StatusCode.IsFinal() {
			t.Fatalf("operation still %s", done.Status)
		}

		if alive(pid, 5*time.Second) {
			t.Errorf("sleep %d still runs after its client vanished", pid)
		}
	})

	t.Run("WebsocketsNeverConnected", func(t *testing.T) {
		c.t = t

		start := time.Now()
		op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{Command: []string{"sleep", "1003"}, WaitForWS: true})
		done := c.wait(op.ID)

		if done.Status != "Failure" || done.Err != "Timed out waiting for websockets to connect" {
			t.Errorf("got %s %q", done.Status, done.Err)
		}

		if el := time.Since(start); el < 4*time.Second || el > 10*time.Second {
			t.Errorf("gave up after %s, want about 5 s", el)
		}
	})

	t.Run("BadSecretsAndDoubleConnect", func(t *testing.T) {
		c.t = t

		op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true})
		fds := opFds(t, op)

		if len(fds["0"]) != 64 {
			t.Errorf("secret %q is not 64 hex characters", fds["0"])
		}

		_, resp, err := c.dialWS(op.ID, "nope")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("unknown secret: %v %v", resp, err)
		}

		first, _, err := c.dialWS(op.ID, fds["0"])
		if err != nil {
			t.Fatal(err)
		}

		defer first.Close()

		_, resp, err = c.dialWS(op.ID, fds["0"])
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("second connection on fd 0: %v %v", resp, err)
		}

		_ = first.Close()
		_ = c.wait(op.ID)
	})

	t.Run("NotRunningOrFrozen", func(t *testing.T) {
		c.t = t

		d.berth("init", "debian/12", "stopped")

		code, env := c.do("POST", "/1.0/instances/stopped/exec", api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true})
		if code != http.StatusBadRequest {
			t.Errorf("stopped instance: %d %s", code, env.Error)
		}

		code, _ = c.do("POST", "/1.0/instances/missing/exec", api.InstanceExecPost{Command: []string{"true"}})
		if code != http.StatusNotFound {
			t.Errorf("missing instance: %d", code)
		}

		d.berth("pause", "exectest")

		code, env = c.do("POST", "/1.0/instances/exectest/exec", api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true})
		d.berth("resume", "exectest")

		if code != http.StatusBadRequest {
			t.Errorf("frozen instance: %d %s", code, env.Error)
		}
	})

	t.Run("RecordOutput", func(t *testing.T) {
		c.t = t

		op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{
			Command: []string{"sh", "-c", "echo recorded; echo oops >&2; exit 4"}, RecordOutput: true})
		done := c.wait(op.ID)

		if opReturn(t, done) != 4 {
			t.Errorf("return %v", done.Metadata)
		}

		out, ok := done.Metadata["output"].(map[string]any)
		if !ok || out["1"] != "/1.0/instances/exectest/logs/exec_"+op.ID+".stdout" {
			t.Fatalf("output %v", done.Metadata["output"])
		}

		got, err := os.ReadFile(filepath.Join(d.dir, "instances", "exectest", "logs", "exec_"+op.ID+".stdout"))
		if err != nil || string(got) != "recorded\n" {
			t.Errorf("recorded stdout %q, %v", got, err)
		}

		// The URLs are served, listed, and deleted on request.
		for fd, want := range map[string]string{"1": "recorded\n", "2": "oops\n"} {
			code, body := c.rawGet(out[fd].(string))
			if code != 200 || string(body) != want {
				t.Errorf("GET %s: %d %q, want %q", out[fd], code, body, want)
			}
		}

		_, list := c.do("GET", "/1.0/instances/exectest/logs", nil)
		if !strings.Contains(string(list.Metadata), out["2"].(string)) {
			t.Errorf("logs list %s lacks %s", list.Metadata, out["2"])
		}

		code, _ := c.do("DELETE", out["1"].(string), nil)
		if code != 200 {
			t.Errorf("DELETE %s: %d", out["1"], code)
		}

		for path, want := range map[string]int{
			out["1"].(string): 404, // deleted
			"/1.0/instances/exectest/logs/exec_..%2F..%2Fspec.json": 404,
			"/1.0/instances/exectest/logs/backup.yaml":              404,
		} {
			if code, _ := c.rawGet(path); code != want {
				t.Errorf("GET %s: %d, want %d", path, code, want)
			}
		}

		if code, _ := c.do("DELETE", "/1.0/instances/exectest/logs/lxc.log", nil); code != 400 {
			t.Errorf("DELETE lxc.log: %d, want 400", code)
		}
	})

	t.Run("NoLeaks", func(t *testing.T) {
		c.t = t
		testNoLeaks(t, d, c)
	})

	t.Run("StockLXC", func(t *testing.T) {
		c.t = t
		testStockLXCExec(t, d)
	})
}

// testInteractive drives a shell on a pty: tty, resize, Ctrl-C, exit code.
func testInteractive(t *testing.T, c *apiClient) {
	op := c.startOp("/1.0/instances/exectest/exec", api.InstanceExecPost{
		Command: []string{"bash", "--norc", "-i"}, WaitForWS: true, Interactive: true,
		Width: 80, Height: 24, Environment: map[string]string{"TERM": "xterm", "PS1": "PROMPT$ "},
	})

	fds := opFds(t, op)
	if len(fds) != 2 || fds["0"] == "" || fds["control"] == "" {
		t.Fatalf("interactive fds %v, want 0 and control", fds)
	}

	conns := c.streams(op)
	term := newTermReader(conns["0"])
	send := func(s string) {
		err := conns["0"].WriteMessage(websocket.BinaryMessage, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
	}

	at := term.expect(t, 0, "PROMPT$ ", 10*time.Second)

	send("tty; stty size\r")
	at = term.expect(t, at, "/dev/pts/", 5*time.Second)
	at = term.expect(t, at, "24 80", 5*time.Second)

	sendControl(t, conns["control"], api.InstanceExecControl{Command: "window-resize", Args: map[string]string{"width": "132", "height": "43"}})
	time.Sleep(100 * time.Millisecond)
	send("stty size\r")
	at = term.expect(t, at, "43 132", 5*time.Second)

	send("sleep 100; echo after-sleep $?\r")
	time.Sleep(500 * time.Millisecond)

	start := time.Now()

	send("\x03")
	at = term.expect(t, at, "PROMPT$ ", 5*time.Second)

	if time.Since(start) > 3*time.Second {
		t.Errorf("Ctrl-C took %s", time.Since(start))
	}

	if strings.Contains(term.String()[at-20:], "after-sleep 0") {
		t.Errorf("sleep was not interrupted:\n%s", term.String())
	}

	send("exit 7\r")

	done := c.wait(op.ID)
	if opReturn(t, done) != 7 {
		t.Errorf("return %v", done.Metadata)
	}

	select {
	case <-term.done:
	case <-time.After(5 * time.Second):
		t.Error("terminal stream did not end after exit")
	}
}

// testNoLeaks runs 200 execs and checks the daemon's fds and goroutines.
func testNoLeaks(t *testing.T, d *daemon, c *apiClient) {
	pid := d.cmd.Process.Pid

	// Warm up: pools, the cgroup layout cache, the operation registry.
	for i := 0; i < 3; i++ {
		c.exec("exectest", api.InstanceExecPost{Command: []string{"true"}}, nil)
	}

	settle := func() (int, int) {
		time.Sleep(200 * time.Millisecond)
		return c.goroutines(), fdCount(t, pid)
	}

	g0, f0 := settle()

	start := time.Now()
	for i := 0; i < 200; i++ {
		r := c.exec("exectest", api.InstanceExecPost{Command: []string{"true"}}, []byte("x"))
		if r.ret != 0 {
			t.Fatalf("exec %d returned %d", i, r.ret)
		}
	}

	t.Logf("200 execs in %s", time.Since(start).Round(time.Millisecond))

	var g1, f1 int

	for i := 0; i < 25; i++ {
		g1, f1 = settle()
		if g1 <= g0 && f1 <= f0 {
			break
		}
	}

	if g1 > g0 || f1 > f0 {
		t.Errorf("after 200 execs: %d goroutines (before %d), %d fds (before %d)", g1, g0, f1, f0)
	}
}

// testStockLXCExec runs Debian's lxc exec against the daemon.
func testStockLXCExec(t *testing.T, d *daemon) {
	bin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

	conf := t.TempDir()
	lxc := func(stdin []byte, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		cmd.Stdin = bytes.NewReader(stdin)

		var out, errb bytes.Buffer

		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()

		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	_, _, _ = lxc(nil, "list")

	_, stderr, code := lxc(nil, "exec", "exectest", "--", "sh", "-c", "exit 3")
	if code != 3 {
		t.Errorf("lxc exec exit 3: exit code %d, stderr %q", code, stderr)
	}

	in := bytes.Repeat([]byte("piped through lxc\n"), 10000)

	out, stderr, code := lxc(in, "exec", "exectest", "--", "cat")
	if code != 0 || out != string(in) {
		t.Errorf("lxc exec cat: code %d, %d bytes out of %d, stderr %q", code, len(out), len(in), stderr)
	}

	out, _, code = lxc(nil, "exec", "exectest", "--user", "1000", "--cwd", "/tmp", "--", "sh", "-c", "id -u; pwd")
	if code != 0 || out != "1000\n/tmp\n" {
		t.Errorf("lxc exec --user --cwd: %d %q", code, out)
	}

	// Interactive through a real terminal: script gives lxc a pty.
	if _, err := exec.LookPath("script"); err == nil {
		cmd := exec.Command("script", "-qec", bin+" exec exectest -- sh -c 'tty; exit 5'", "/dev/null")
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		cmd.Stdin = strings.NewReader("")

		var o bytes.Buffer

		cmd.Stdout = &o
		_ = cmd.Run()

		if cmd.ProcessState.ExitCode() != 5 || !strings.Contains(o.String(), "/dev/pts/") {
			t.Errorf("lxc exec on a pty: exit %d, output %q", cmd.ProcessState.ExitCode(), o.String())
		}
	}
}

// waitForHostProcess finds the host pid of a process by its exact
// NUL-separated command line.
func waitForHostProcess(t *testing.T, cmdline string, timeout time.Duration) int {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		pid := findHostProcess(func(_ int, cl string) bool { return cl == cmdline })
		if pid > 0 {
			return pid
		}

		time.Sleep(20 * time.Millisecond)
	}

	t.Fatalf("no process %q", strings.ReplaceAll(cmdline, "\x00", " "))

	return 0
}

// testExecServerOutOfSight: the container's exec server is in its
// namespaces but the pid one, and outside the cgroup2 tree systemd manages
// inside, where it would show as pid 0 and break `systemctl status`.
func testExecServerOutOfSight(t *testing.T, d *daemon, c *apiClient) {
	init := d.initPID("exectest")
	c.sh("exectest", "true") // the first exec starts the server
	server := childProcess(t, d.cmd.Process.Pid, "berth-exec-server\x00__exec-server")

	ns := func(pid int, n string) string {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		return l
	}

	if ns(server, "pid") == ns(init, "pid") {
		t.Error("the exec server is in the container's pid namespace")
	}

	for _, n := range []string{"user", "mnt", "net", "uts", "ipc", "cgroup"} {
		if ns(server, n) != ns(init, n) {
			t.Errorf("exec server's %s namespace %s, init's %s", n, ns(server, n), ns(init, n))
		}
	}

	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", server))
	initCg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))

	if cgroup2Line(cg) == cgroup2Line(initCg) || strings.HasPrefix(cgroup2Line(cg), strings.TrimSuffix(cgroup2Line(initCg), "/init.scope")) {
		t.Errorf("exec server in cgroup2 group %s, inside the container's (init: %s)", cgroup2Line(cg), cgroup2Line(initCg))
	}

	out := c.sh("exectest", "systemctl status --no-pager 2>&1; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done")
	if strings.Contains(out, "Failed to dump process list") || strings.Contains(out, "__exec-server") {
		t.Errorf("the exec server shows inside:\n%s", out)
	}
}

// childProcess finds the child of parent with the given cmdline.
func childProcess(t *testing.T, parent int, cmdline string) int {
	t.Helper()

	pids := children(parent, cmdline)
	if len(pids) == 0 {
		t.Fatalf("no child of %d running %q", parent, strings.ReplaceAll(cmdline, "\x00", " "))
	}

	return pids[0]
}

// findHostProcess returns the first process whose NUL-separated command
// line match accepts, 0 if none.
func findHostProcess(match func(pid int, cmdline string) bool) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int

		_, err := fmt.Sscan(e.Name(), &pid)
		if err != nil {
			continue
		}

		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if match(pid, string(bytes.TrimRight(b, "\x00"))) {
			return pid
		}
	}

	return 0
}

// cgroup2Line is the path of the "0::" line of a /proc/PID/cgroup file.
func cgroup2Line(data []byte) string {
	for _, l := range strings.Split(string(data), "\n") {
		p, ok := strings.CutPrefix(l, "0::")
		if ok {
			return p
		}
	}

	return ""
}
