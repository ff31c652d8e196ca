package cgroup

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/berth-dev/berth/test/testutil"
)

// testBus is a private dbus-daemon on a fixed socket path, so it can be
// restarted under the same address.
type testBus struct {
	addr string
	sock string
	cmd  *exec.Cmd
}

func needDBusDaemon(t *testing.T) string {
	t.Helper()

	p, err := exec.LookPath("dbus-daemon")
	if err == nil {
		return p
	}

	testutil.SkipOrFail(t, "needs dbus-daemon")

	return ""
}

func startBus(t *testing.T) *testBus {
	t.Helper()
	needDBusDaemon(t)

	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bdbus")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	b := &testBus{sock: filepath.Join(dir, "bus")}
	b.addr = "unix:path=" + b.sock
	b.start(t)
	t.Cleanup(func() { b.stop() })

	return b
}

func (b *testBus) start(t *testing.T) {
	t.Helper()

	_ = os.Remove(b.sock)

	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address", "--address="+b.addr)

	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}

	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	b.cmd = cmd

	// The address is printed once the daemon listens.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.stop()
		t.Fatalf("dbus-daemon did not start: %v", err)
	}

	if !strings.HasPrefix(line, "unix:path="+b.sock) {
		b.stop()
		t.Fatalf("dbus-daemon listens on %q, want %s", line, b.addr)
	}
}

// stop kills the daemon this test started (by its pid, via cmd).
func (b *testBus) stop() {
	if b.cmd == nil {
		return
	}

	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

func (b *testBus) restart(t *testing.T) {
	t.Helper()
	b.stop()
	b.start(t)
}

// fakeCall is one Manager call the fake received.
type fakeCall struct {
	Method string
	Sig    string // the message's body signature
	Sender string // unique name of the caller's connection
	Unit   string
	Mode   string
	Props  map[string]dbus.Variant
	Aux    []auxUnit
	Flag   bool // SetUnitProperties' runtime
}

// fakeSystemd plays org.freedesktop.systemd1's Manager on a test bus: it
// creates scopes as directories under a cgroup2 root, moves their PIDs in,
// emits JobRemoved, and removes them on StopUnit.
type fakeSystemd struct {
	t    *testing.T
	root string // cgroup2 root

	mu     sync.Mutex
	conn   *dbus.Conn
	calls  []fakeCall
	units  map[string]string // unit -> "active" or "failed"
	jobs   uint32
	result string // next start job's result; "" means "done"
	// silent: the next start job never reports JobRemoved (its caller
	// waits, as for a job systemd has not finished yet).
	silent bool
}

func startFakeSystemd(t *testing.T, b *testBus, root string) *fakeSystemd {
	t.Helper()

	f := &fakeSystemd{t: t, root: root, units: map[string]string{}}
	f.attach(t, b)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()

		if f.conn != nil {
			_ = f.conn.Close()
		}

		for u := range f.units {
			_ = killV2(f.dir(u))
			_ = removeTree(f.dir(u))
		}

		_ = unixRmdir(filepath.Join(root, Slice))
	})

	return f
}

// attach (re)connects the fake to b and takes systemd's name there.
func (f *fakeSystemd) attach(t *testing.T, b *testBus) {
	t.Helper()

	c, err := dbus.Connect(b.addr)
	if err != nil {
		t.Fatal(err)
	}

	err = c.Export(fakeManager{f}, managerPath, managerIface)
	if err != nil {
		t.Fatal(err)
	}

	reply, err := c.RequestName(systemdDest, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("taking %s: %v, %v", systemdDest, reply, err)
	}

	f.mu.Lock()
	old := f.conn
	f.conn = c
	f.mu.Unlock()

	if old != nil {
		_ = old.Close()
	}
}

func (f *fakeSystemd) dir(unit string) string {
	return filepath.Join(f.root, Slice, unit)
}

func (f *fakeSystemd) record(c fakeCall, msg dbus.Message) {
	sig, _ := msg.Headers[dbus.FieldSignature].Value().(dbus.Signature)
	sender, _ := msg.Headers[dbus.FieldSender].Value().(string)
	c.Sig = sig.String()
	c.Sender = sender
	f.calls = append(f.calls, c)
}

// callsOf returns the calls of one method so far.
func (f *fakeSystemd) callsOf(method string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()

	var out []fakeCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}

	return out
}

// newJob returns a job path and emits its JobRemoved shortly, as systemd
// does after its reply.
func (f *fakeSystemd) newJob(unit, result string) dbus.ObjectPath {
	f.jobs++
	id := f.jobs
	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	conn := f.conn

	go func() {
		time.Sleep(5 * time.Millisecond)
		_ = conn.Emit(managerPath, managerIface+".JobRemoved", id, job, unit, result)
	}()

	return job
}

func busErr(name, format string, args ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, args...)})
}

func unixRmdir(dir string) error { return os.Remove(dir) }

// fakeManager holds only the D-Bus methods, so Export exposes nothing else.
type fakeManager struct{ f *fakeSystemd }

func (m fakeManager) Subscribe() *dbus.Error { return nil }

func (m fakeManager) StartTransientUnit(msg dbus.Message, unit, mode string, props []property, aux []auxUnit) (dbus.ObjectPath, *dbus.Error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()

	pm := map[string]dbus.Variant{}
	for _, p := range props {
		pm[p.Name] = p.Value
	}

	f.record(fakeCall{Method: "StartTransientUnit", Unit: unit, Mode: mode, Props: pm, Aux: aux}, msg)

	_, exists := f.units[unit]
	if exists {
		return "", busErr(errUnitExists, "Unit %s already exists.", unit)
	}

	slice, _ := pm["Slice"].Value().(string)
	pids, _ := pm["PIDs"].Value().([]uint32)

	if !strings.HasSuffix(unit, ".scope") || slice != Slice || len(pids) == 0 {
		return "", busErr("org.freedesktop.DBus.Error.InvalidArgs", "bad scope %s in %q with pids %v", unit, slice, pids)
	}

	result := f.result
	f.result = ""

	if result != "" {
		f.units[unit] = "failed"
		return f.newJob(unit, result), nil
	}

	err := os.MkdirAll(f.dir(unit), 0o755)
	if err != nil {
		return "", dbus.MakeFailedError(err)
	}

	for _, pid := range pids {
		err = writeFile(filepath.Join(f.dir(unit), "cgroup.procs"), strconv.Itoa(int(pid)))
		if err != nil {
			return "", dbus.MakeFailedError(err)
		}
	}

	f.units[unit] = "active"

	if f.silent {
		f.silent = false
		f.jobs++

		return dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", f.jobs)), nil
	}

	return f.newJob(unit, "done"), nil
}

func (m fakeManager) SetUnitProperties(msg dbus.Message, unit string, runtime bool, props []property) *dbus.Error {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()

	pm := map[string]dbus.Variant{}
	for _, p := range props {
		pm[p.Name] = p.Value
	}

	f.record(fakeCall{Method: "SetUnitProperties", Unit: unit, Flag: runtime, Props: pm}, msg)

	if f.units[unit] != "active" {
		return busErr(errNoSuchUnit, "Unit %s not loaded.", unit)
	}

	return nil
}

// StopUnit kills and removes the scope like systemd would (after SIGTERM).
func (m fakeManager) StopUnit(msg dbus.Message, unit, mode string) (dbus.ObjectPath, *dbus.Error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()

	f.record(fakeCall{Method: "StopUnit", Unit: unit, Mode: mode}, msg)

	state, ok := f.units[unit]
	if !ok {
		return "", busErr(errNoSuchUnit, "Unit %s not loaded.", unit)
	}

	if state == "active" {
		err := killV2(f.dir(unit))
		if err == nil {
			err = removeTree(f.dir(unit))
		}

		if err != nil {
			return "", dbus.MakeFailedError(err)
		}

		_ = unixRmdir(filepath.Join(f.root, Slice))
	}

	// CollectMode=inactive-or-failed: gone once stopped.
	delete(f.units, unit)

	return f.newJob(unit, "done"), nil
}

func (m fakeManager) ResetFailedUnit(msg dbus.Message, unit string) *dbus.Error {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()

	f.record(fakeCall{Method: "ResetFailedUnit", Unit: unit}, msg)

	state, ok := f.units[unit]
	if !ok {
		return busErr(errNoSuchUnit, "Unit %s not loaded.", unit)
	}

	if state == "failed" {
		delete(f.units, unit)
	}

	return nil
}
