package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heldRSSMax bounds the private memory of a held monitor: the Go monitor
// has ~2.3 MB, the holder a few hundred KB.
const heldRSSMax = 400 << 10

// goRuntime reports whether pid runs Go: a Go runtime has threads of its
// own (sysmon at least) before main, the holder is one thread.
func goRuntime(t *testing.T, pid int) bool {
	t.Helper()

	return statusField(t, pid, "Threads:") > 1
}

func statusField(t *testing.T, pid int, key string) int {
	t.Helper()

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}

	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}

	t.Fatalf("no %s in the status of %d", key, pid)

	return 0
}

func rssAnon(t *testing.T, pid int) int {
	t.Helper()

	return statusField(t, pid, "RssAnon:") << 10
}

// waitHeld waits until the monitor pid runs the holder, and checks what
// that costs.
func waitHeld(t *testing.T, pid int) {
	t.Helper()

	deadline := time.Now().Add(holdIdle + 10*time.Second)
	for goRuntime(t, pid) {
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d still runs Go %s after its last request", pid, holdIdle+10*time.Second)
		}

		time.Sleep(50 * time.Millisecond)
	}

	// Past its exec the holder still sets up (epoll, listener, signals): held means
	// waiting in epoll_wait. A test that lowered its fd limit in between made its
	// epoll_create1 fail (seen once in make test-unit on a loaded host).
	for !inEpollWait(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d runs the holder but never waits in epoll_wait", pid)
		}

		time.Sleep(5 * time.Millisecond)
	}

	rss := rssAnon(t, pid)
	t.Logf("MEASURE held monitor %d: RssAnon %d kB, Pss %s", pid, rss>>10, pss(t, pid))

	if rss > heldRSSMax {
		t.Errorf("held monitor %d has RssAnon %d kB, want <= %d kB", pid, rss>>10, heldRSSMax>>10)
	}
}

// inEpollWait says whether process pid is blocked in epoll_wait or epoll_pwait, as
// /proc/<pid>/syscall shows (x86-64 and arm64 numbers; glibc's epoll_wait is either).
func inEpollWait(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
	if err != nil {
		return false
	}

	nr, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	switch runtime.GOARCH + ":" + nr {
	case "amd64:232", "amd64:281", "arm64:22":
		return true
	}

	return false
}

// rawCall sends one raw request line and reads one response line.
func rawCall(t *testing.T, spec Spec, line string) response {
	t.Helper()

	c, err := net.DialTimeout("unix", filepath.Join(spec.RunDir, socketFile), dialTimeout)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = c.Close() }()

	_ = c.SetDeadline(time.Now().Add(20 * time.Second))

	_, err = c.Write([]byte(line))
	if err != nil {
		t.Fatal(err)
	}

	var resp response

	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(b, &resp)
	}

	if err != nil {
		t.Fatalf("answer to %q: %v (%q)", line, err, b)
	}

	return resp
}

// TestHoldRoundTrips: an idle container's monitor is the C holder; every
// request, and init's reboot, takes it to Go and back with the same pid,
// socket, console and watch.
func TestHoldRoundTrips(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("hold-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	if s := waitRunning(t, pid); s != "running" {
		t.Fatalf("is-system-running = %q", s)
	}

	waitHeld(t, mon)

	// Answered by the holder: state (twice, as the raw protocol and the
	// client), console log, resize and attach.
	t0 := time.Now()
	st, err := m.State()
	t.Logf("MEASURE state from the holder: %s", time.Since(t0))
	if err != nil || st.InitPID != pid || st.MonitorPID != mon || st.Status != "running" || st.Version != protocolVersion {
		t.Fatalf("state from the holder = %+v, %v", st, err)
	}

	resp := rawCall(t, spec, "{ \"op\" : \"state\" }\n")
	if !resp.OK || resp.State == nil || resp.State.Name != spec.Name || !resp.State.StartedAt.Equal(st.StartedAt) {
		t.Errorf("raw state from the holder = %+v", resp)
	}

	resp = rawCall(t, spec, `{"op":"console-resize","width":0,"height":3}`+"\n")
	if resp.OK || resp.Error != "invalid console size 0x3" {
		t.Errorf("bad resize answered %+v", resp)
	}

	err = m.ConsoleResize(100, 40)
	if err != nil {
		t.Errorf("resize: %v", err)
	}

	log, err := m.ConsoleLog()
	if err != nil || !bytes.Contains(log, []byte("systemd")) {
		t.Errorf("console log from the holder: %v, %q", err, tail(log, 300))
	}

	if goRuntime(t, mon) {
		t.Error("the monitor left the holder for requests the holder answers")
	}

	// The console: what is typed reaches the container, what it prints
	// comes back.
	con, err := m.ConsoleAttach()
	if err != nil {
		t.Fatal(err)
	}

	_, err = m.ConsoleAttach()
	if err == nil {
		t.Error("a second console attach was accepted")
	}

	marker := fmt.Sprintf("held-%d", time.Now().UnixNano())

	out, err := inside(t, pid, 10*time.Second, "sh", "-c", "echo "+marker+" > /dev/console")
	if err != nil {
		t.Fatalf("writing the console: %v %s", err, out)
	}

	readUntil(t, con, marker)
	_ = con.Close()

	// Go-only requests: stats, freeze and thaw; back to the holder each time.
	t0 = time.Now()

	stats, err := m.Stats()
	if err != nil || stats.Processes < 1 {
		t.Fatalf("stats through the holder: %+v, %v", stats, err)
	}

	t1 := time.Now()

	_, err = m.Stats()
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("MEASURE stats: %s from the holder (resuming Go), %s from Go", t1.Sub(t0), time.Since(t1))

	t0 = time.Now()

	_, err = m.State()
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("MEASURE state from Go: %s", time.Since(t0))

	waitHeld(t, mon)

	err = m.Freeze()
	if err != nil {
		t.Fatal(err)
	}

	waitHeld(t, mon)

	// A new handle asks the holder, which reads the cgroup.
	again, err := Attach(spec.RunDir)
	if err != nil {
		t.Fatal(err)
	}

	if !again.Frozen() {
		t.Error("the holder does not report the container frozen")
	}

	_ = again.Close()

	err = m.Thaw()
	if err != nil {
		t.Fatal(err)
	}

	waitHeld(t, mon)

	if st, err := m.State(); err != nil || st.Status != "running" {
		t.Errorf("state after thaw = %+v, %v", st, err)
	}

	// A reboot inside: init exits under the holder, Go restarts it in place.
	_, err = inside(t, pid, 30*time.Second, "systemctl", "reboot")
	if err != nil {
		t.Logf("systemctl reboot: %v", err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err = m.State()
		if err == nil && st.Reboots == 1 {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("no in-place restart after reboot: state %+v, %v", st, err)
		}

		time.Sleep(100 * time.Millisecond)
	}

	if st.MonitorPID != mon {
		t.Errorf("monitor pid changed across the reboot: %d, was %d", st.MonitorPID, mon)
	}

	if s := waitRunning(t, st.InitPID); s != "running" {
		t.Fatalf("after reboot: is-system-running = %q", s)
	}

	waitHeld(t, mon)

	// Stop from the holder: the watch the handle holds since Start comes
	// back through two execs with the exit.
	e, err := m.Stop(context.Background(), 30*time.Second, false)
	if err != nil || e.Killed || e.Reason != "poweroff" || e.Term {
		t.Fatalf("stop from the holder = %+v, %v", e, err)
	}

	select {
	case <-m.Done():
	default:
		t.Error("Done not closed after Stop")
	}

	checkGone(t, spec, st.InitPID, mon)
}

// readUntil reads c until want appeared.
func readUntil(t *testing.T, c net.Conn, want string) {
	t.Helper()

	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))

	var got []byte

	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)

		if err != nil {
			t.Fatalf("console never showed %q: %v; got %q", want, err, tail(got, 300))
		}
	}
}

// TestHoldConsoleFlood: the container floods its console with binary junk
// and endless lines; the holder stays up, its ring stays at its size, and
// its memory does not grow.
func TestHoldConsoleFlood(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("flood-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitRunning(t, pid)
	waitHeld(t, mon)

	// An attached client that never reads must be dropped, not stall the
	// console or grow the holder.
	lazy, err := m.ConsoleAttach()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = lazy.Close() }()

	flood := "head -c 8000000 /dev/urandom > /dev/console; " +
		"head -c 3000000 /dev/zero | tr '\\0' x > /dev/console; " +
		"echo flood-done > /dev/console"

	out, err := inside(t, pid, 120*time.Second, "sh", "-c", flood)
	if err != nil {
		t.Fatalf("flooding the console: %v %s", err, out)
	}

	if goRuntime(t, mon) {
		t.Error("the flood took the monitor out of the holder")
	}

	rss := rssAnon(t, mon)
	t.Logf("MEASURE held monitor after an 11 MB console flood: RssAnon %d kB", rss>>10)

	if rss > heldRSSMax {
		t.Errorf("holder RssAnon %d kB after the flood, want <= %d kB", rss>>10, heldRSSMax>>10)
	}

	// The holder drains the console as it comes; give it the last line.
	var log []byte

	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err = m.ConsoleLog()
		if err != nil {
			t.Fatal(err)
		}

		if bytes.Contains(log, []byte("flood-done")) || time.Now().After(deadline) {
			break
		}

		time.Sleep(50 * time.Millisecond)
	}

	if len(log) != consoleRingSize || !bytes.HasSuffix(bytes.TrimRight(log, "\r\n"), []byte("flood-done")) {
		t.Errorf("console log after the flood: %d bytes ending %q, want %d ending flood-done", len(log), tail(log, 40), consoleRingSize)
	}

	// The lazy client was cut off.
	_ = lazy.SetReadDeadline(time.Now().Add(20 * time.Second))

	var n int64

	buf := make([]byte, 64<<10)
	for {
		k, err := lazy.Read(buf)
		n += int64(k)

		if err != nil {
			break
		}
	}

	if n > 1<<20 {
		t.Errorf("a client that did not read got %d bytes queued", n)
	}

	// The console still works for the next client.
	con, err := m.ConsoleAttach()
	if err != nil {
		t.Fatalf("attach after the flood: %v", err)
	}

	_, err = inside(t, pid, 10*time.Second, "sh", "-c", "echo after-flood > /dev/console")
	if err != nil {
		t.Fatal(err)
	}

	readUntil(t, con, "after-flood")
	_ = con.Close()

	e, err := m.Stop(context.Background(), 30*time.Second, true)
	if err != nil || !e.Killed {
		t.Fatalf("stop = %+v, %v", e, err)
	}

	checkGone(t, spec, pid, mon)
}

// TestHoldSignals: the holder ignores the daemon's terminal signals and
// stops the container cleanly on SIGTERM, as the Go monitor does.
func TestHoldSignals(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("holdsig-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitRunning(t, pid)
	waitHeld(t, mon)

	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE} {
		err := syscall.Kill(mon, sig)
		if err != nil {
			t.Fatal(err)
		}
	}

	time.Sleep(200 * time.Millisecond)

	if !alive(mon) || goRuntime(t, mon) {
		t.Fatal("the holder died of, or left for, SIGHUP/SIGINT/SIGPIPE")
	}

	if st, err := m.State(); err != nil || st.InitPID != pid {
		t.Fatalf("state after the signals = %+v, %v", st, err)
	}

	err := syscall.Kill(mon, syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-m.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("Done not closed after SIGTERM to the holder")
	}

	e := m.Exit()
	if e == nil || e.Killed || e.Reason != "poweroff" || !e.Term {
		t.Errorf("exit after SIGTERM to the holder = %+v", e)
	}

	checkGone(t, spec, pid, mon)
}
