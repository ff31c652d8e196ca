package container

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/setup"
)

var testIDs = idmap.Set{HostUID: testHostID, HostGID: testHostID, Size: testIDRange}

// makeInit has a new maker fork an init (the test binary's __init, which then waits for
// its config on the sync socket); both are cleaned up with the test.
func makeInit(t *testing.T) (*os.Process, *initMaker) {
	t.Helper()

	mk, err := spawnInitMaker(&initExe{path: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(mk.discard)

	proc, err := mk.clone(testIDs)
	mk.closeControl()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	})

	return proc, mk
}

// TestInitMaker: init gets namespaces of its own, is PID 1 and root in them with the
// container's id map, has the console as controlling terminal in a session it leads,
// holds no socket but its sync socket, and is our child; the maker is gone.
func TestInitMaker(t *testing.T) {
	needRoot(t)

	proc, mk := makeInit(t)
	pid := proc.Pid

	for _, ns := range []string{"user", "mnt", "pid", "net", "uts", "ipc"} {
		ours, _ := os.Readlink("/proc/self/ns/" + ns)
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil || theirs == ours {
			t.Errorf("init's %s namespace is %q (err %v), ours %q", ns, theirs, err, ours)
		}
	}

	m, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if f := strings.Fields(string(m)); len(f) != 3 || f[0] != "0" || f[1] != strconv.Itoa(testHostID) || f[2] != strconv.Itoa(testIDRange) {
		t.Errorf("init's uid_map is %q", m)
	}

	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, want := range []string{fmt.Sprintf("NSpid:\t%d\t1\n", pid), fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", testHostID, testHostID, testHostID, testHostID)} {
		if !strings.Contains(string(status), want) {
			t.Errorf("init's status lacks %q:\n%s", want, status)
		}
	}

	// The child makes the terminal its own just after the fork: wait for it.
	var st syscall.Stat_t
	_ = syscall.Fstat(int(mk.slave.Fd()), &st)

	deadline := time.Now().Add(10 * time.Second)
	for {
		sid, tty := sessionOf(t, pid)
		if sid == pid && tty == int(st.Rdev) {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("init's session %d and tty %#x, want %d and the console %#x", sid, tty, pid, st.Rdev)
		}

		time.Sleep(5 * time.Millisecond)
	}

	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		l, _ := os.Readlink(fd)
		if strings.HasPrefix(l, "socket:") && filepath.Base(fd) != "3" {
			t.Errorf("init holds a socket other than its sync socket: fd %s", filepath.Base(fd))
		}
	}

	_ = proc.Kill()
	ps, err := proc.Wait()
	if err != nil || !ps.Exited() && ps.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("reaping init: %v, %v", ps, err)
	}
}

// sessionOf reads the session and controlling terminal of pid from its stat line.
func sessionOf(t *testing.T, pid int) (sid, tty int) {
	t.Helper()

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}

	// After "pid (comm) state ppid pgrp": session, tty_nr.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, _ = strconv.Atoi(f[3])
	tty, _ = strconv.Atoi(f[4])

	return sid, tty
}

// TestInitMakerExitsWithoutGo: a maker whose monitor goes away before the go message
// (a spare killed, a failed start) exits by itself and makes nothing.
func TestInitMakerExitsWithoutGo(t *testing.T) {
	needRoot(t)

	mk, err := spawnInitMaker(&initExe{path: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}

	cmd := mk.cmd
	mk.cmd = nil // reaped here
	t.Cleanup(mk.discard)

	mk.closeControl()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	select {
	case err := <-done:
		if cmd.ProcessState.ExitCode() != 1 {
			t.Errorf("the maker ended with %v, want exit status 1", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the maker still runs with its socket closed")
	}
}

// replaceStale starts a maker, kills the process of it that kill names and waits until it
// is a zombie, then has readyMaker replace the maker: the start's view of a spare that
// died in part while it waited. The new maker is discarded with the test.
func replaceStale(t *testing.T, kill func(*initMaker) *os.Process) (mk, stale *initMaker) {
	t.Helper()

	exe := &initExe{path: "/proc/self/exe"}
	stale, err := spawnInitMaker(exe)
	if err != nil {
		t.Fatal(err)
	}

	if err := stale.alive(); err != nil {
		t.Fatalf("a fresh maker is not alive: %v", err)
	}

	p := kill(stale)
	_ = p.Kill()
	for procState(p.Pid) != "Z" {
		time.Sleep(time.Millisecond)
	}

	mk, netns, err := readyMaker(exe, stale, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatalf("readyMaker with a stale maker: %v", err)
	}

	_ = netns.Close()
	t.Cleanup(mk.discard)

	return mk, stale
}

// TestReadyMakerReplacesDeadMaker: a spare's maker that died waiting is replaced by one
// made on the spot (readyMaker), and the start goes on.
func TestReadyMakerReplacesDeadMaker(t *testing.T) {
	needRoot(t)

	mk, dead := replaceStale(t, func(mk *initMaker) *os.Process { return mk.cmd.Process })

	proc, err := mk.clone(testIDs)
	mk.closeControl()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	})

	if mk == dead {
		t.Fatal("the dead maker was returned")
	}

	if dead.cmd != nil || dead.sync != nil {
		t.Error("the dead maker was not discarded")
	}

	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", proc.Pid))
	if !strings.Contains(string(status), fmt.Sprintf("NSpid:\t%d\t1\n", proc.Pid)) {
		t.Errorf("no init from the new maker:\n%s", status)
	}
}

// TestInitMakerThatDies: a maker that dies before it answers (here a binary without the
// constructor) is an error at once, not a wait of makerWait or a panic, and leaves
// nothing open.
func TestInitMakerThatDies(t *testing.T) {
	needRoot(t)

	before, _ := filepath.Glob("/proc/self/fd/*")
	t0 := time.Now()

	mk, err := spawnInitMaker(&initExe{path: "/bin/true"})
	if err == nil {
		mk.discard()
		t.Fatal("a maker that exits at once made init's namespaces")
	}

	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("the error took %s", took)
	}

	if after, _ := filepath.Glob("/proc/self/fd/*"); len(after) > len(before) {
		t.Errorf("%d fds open before, %d after", len(before), len(after))
	}
}

// TestCloneReplyLayout: the reply is initclone.c's struct initclone_reply, 48 bytes.
func TestCloneReplyLayout(t *testing.T) {
	if n := binary.Size(cloneReply{}); n != 48 {
		t.Errorf("cloneReply is %d bytes, initclone.c sends 48", n)
	}
}

// TestHostSideProcContext: the host side makes init's procfs context itself where the
// kernel can, and takes the one init made where it cannot (kernels without procfs's
// pidns parameter); with neither, it says why instead of waiting.
func TestHostSideProcContext(t *testing.T) {
	needRoot(t)

	proc, _ := makeInit(t)

	forked := func(h *hostSide) {
		t.Helper()
		if err := h.initForked(proc.Pid); err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() {
			if h.pidns != nil {
				_ = h.pidns.Close()
			}
		})
	}

	h := newHostSide()
	forked(h)
	fd, err := h.procContext()
	if err != nil || fd != h.own {
		t.Fatalf("no procfs context made here: fd %d, own %d, %v", fd, h.own, err)
	}

	_ = syscall.Close(h.own)

	h = newHostSide()
	h.makeProc = func(int) (int, error) { return -1, syscall.EINVAL }
	forked(h)
	h.giveProc(42)
	if fd, err := h.procContext(); fd != 42 || err != nil || h.own >= 0 {
		t.Errorf("without the pidns parameter: fd %d, %v, want init's 42", fd, err)
	}

	h = newHostSide()
	h.makeProc = func(int) (int, error) { return -1, syscall.EINVAL }
	forked(h)
	close(h.procc)
	if _, err := h.procContext(); err == nil {
		t.Error("no error with no procfs context from anyone")
	}
}

// TestCopierNeedsTheMountNamespace: a copier told to go without the host side's mount
// namespace (the fd that comes with the line) copies nothing and exits.
func TestCopierNeedsTheMountNamespace(t *testing.T) {
	needRoot(t)

	mk, err := spawnInitMaker(&initExe{path: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(mk.discard)

	cp := mk.copier
	mk.copier = nil // reaped here, not by the cleanup's discard
	_ = cp.sock.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := expectFromChild(cp.dec, setup.SyncCopierStarted); err != nil {
		t.Fatal(err)
	}

	_, err = cp.sock.WriteString(`{"type":"copy-mount-ns"}` + "\n")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := expectFromChild(cp.dec, setup.SyncMountNSReady); err == nil {
		t.Fatal("the copier copied with no mount namespace given")
	}

	done := make(chan struct{})
	go func() {
		_ = cp.cmd.Wait()
		close(done)
	}()

	select {
	case <-done:
		if cp.cmd.ProcessState.ExitCode() != 1 {
			t.Errorf("the copier ended with %v, want exit status 1", cp.cmd.ProcessState)
		}
	case <-time.After(10 * time.Second):
		_ = cp.cmd.Process.Kill()
		<-done
		t.Fatal("the copier still runs")
	}
}

// TestReadyMakerReplacesDeadCopier: a spare's maker whose copier died waiting is replaced
// too, before the start relies on it.
func TestReadyMakerReplacesDeadCopier(t *testing.T) {
	needRoot(t)

	mk, stale := replaceStale(t, func(mk *initMaker) *os.Process { return mk.copier.cmd.Process })

	if mk == stale || stale.cmd != nil {
		t.Fatal("the maker with the dead copier was kept")
	}

	if err := mk.alive(); err != nil {
		t.Fatalf("the new maker: %v", err)
	}
}
