package container

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/setup"
)

var testIDs = idmap.Set{HostUID: testHostID, HostGID: testHostID, Size: testIDRange}

// makeInit has a new maker fork an init (the test binary's __init, which then waits for
// its config on the sync socket) and maps its ids; both are cleaned up with the test.
func makeInit(t *testing.T) (*os.Process, *initMaker) {
	t.Helper()

	mk, err := spawnInitMaker(&initExe{path: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(mk.discard)

	proc, err := mk.mapIDs(testIDs)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	})

	return proc, mk
}

// TestInitMaker: init gets namespaces of its own (a mount namespace once it has its
// config), is PID 1 with the container's id map and becomes root in them, has the console
// as controlling terminal in a session it leads, holds no socket but its sync socket, and
// is our child; the maker is gone.
func TestInitMaker(t *testing.T) {
	needRoot(t)

	// A private mount point: what is mounted below it later reaches no copy of this mount
	// namespace made before, whatever the host's propagation.
	private := t.TempDir()
	for _, m := range []struct{ flags uintptr }{{syscall.MS_BIND}, {syscall.MS_PRIVATE}} {
		if err := syscall.Mount(private, private, "", m.flags, ""); err != nil {
			t.Fatal(err)
		}
	}

	t.Cleanup(func() { _ = syscall.Unmount(private, syscall.MNT_DETACH) })

	proc, mk := makeInit(t)
	pid := proc.Pid

	for _, ns := range []string{"user", "pid", "net", "uts", "ipc"} {
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
	if want := fmt.Sprintf("NSpid:\t%d\t1\n", pid); !strings.Contains(string(status), want) {
		t.Errorf("init's status lacks %q:\n%s", want, status)
	}

	// A mount staged after init was made and waits for its config, as the daemon stages a
	// start's devices: init's copy of the host's mount namespace, made once the config
	// came, shows it.
	waitReadingConfig(t, pid)
	staged := filepath.Join(private, "staged")
	if err := os.Mkdir(staged, 0o700); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Mount("tmpfs", staged, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = syscall.Unmount(staged, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(staged, "marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	configure(t, mk)

	if _, err := os.Stat(fmt.Sprintf("/proc/%d/root%s/marker", pid, staged)); err != nil {
		t.Errorf("init's mount namespace lacks the mount staged before its config: %v", err)
	}

	// Root in every thread of its Go runtime, not only the one that execs, and in a mount
	// namespace of its own.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if len(tasks) < 2 {
		t.Errorf("init has %d threads: a Go runtime has more", len(tasks))
	}

	for _, task := range tasks {
		status, _ := os.ReadFile(task)
		for _, want := range []string{
			fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", testHostID, testHostID, testHostID, testHostID),
			fmt.Sprintf("Gid:\t%d\t%d\t%d\t%d\n", testHostID, testHostID, testHostID, testHostID),
		} {
			if !strings.Contains(string(status), want) {
				t.Errorf("%s lacks %q:\n%s", task, want, status)
			}
		}
	}

	ours, _ := os.Readlink("/proc/self/ns/mnt")
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/mnt", pid, pid))
	if err != nil || theirs == ours {
		t.Errorf("init's mount namespace is %q (err %v), ours %q", theirs, err, ours)
	}

	// Owned by the container's user namespace, where the host's mounts are locked.
	if owner, userns := mountNSOwner(t, pid), inode(t, fmt.Sprintf("/proc/%d/ns/user", pid)); owner != userns {
		t.Errorf("init's mount namespace belongs to user namespace %d, init's is %d", owner, userns)
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

// waitReadingConfig waits until init (pid) blocks reading its sync socket (fd 3) on its
// main thread: its runtime is up and it waits for its config.
func waitReadingConfig(t *testing.T, pid int) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == strconv.Itoa(unix.SYS_READ) && f[1] == "0x3" {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("init does not wait for its config: %q", b)
		}

		time.Sleep(time.Millisecond)
	}
}

// mountNSOwner is the inode of the user namespace that owns pid's mount namespace.
func mountNSOwner(t *testing.T, pid int) uint64 {
	t.Helper()

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = unix.Close(fd) }()

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}

	return st.Ino
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()

	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}

	return st.Ino
}

// configure sends init an empty config, as the monitor does once the maps are written,
// and waits until init has become root: the procfs context it sends then.
func configure(t *testing.T, mk *initMaker) {
	t.Helper()

	_ = mk.sync.SetDeadline(time.Now().Add(10 * time.Second))
	err := json.NewEncoder(mk.sync).Encode(setup.SyncMsg{Type: setup.SyncConfig, Version: setup.SyncVersion, Config: &setup.Config{}})
	if err != nil {
		t.Fatal(err)
	}

	fd, err := setup.RecvFD(mk.sync, setup.SyncProcContext)
	if err != nil {
		t.Fatal(err)
	}

	_ = syscall.Close(fd)
}

// TestInitExitsWithoutConfig: an init made ahead whose monitor goes away before its config
// (a spare killed, a failed start) exits by itself, and says why on its console.
func TestInitExitsWithoutConfig(t *testing.T) {
	needRoot(t)

	mk, err := spawnInitMaker(&initExe{path: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}

	proc := mk.init
	mk.init = nil // reaped here
	t.Cleanup(mk.discard)

	waitReadingConfig(t, proc.Pid)
	_ = mk.sync.Close()
	mk.sync = nil

	done := make(chan *os.ProcessState, 1)
	go func() {
		ps, _ := proc.Wait()
		done <- ps
	}()

	select {
	case ps := <-done:
		if ps.ExitCode() != 1 {
			t.Errorf("init ended with %v, want exit status 1", ps)
		}
	case <-time.After(10 * time.Second):
		_ = proc.Kill()
		<-done
		t.Fatal("init still runs with its sync socket closed")
	}

	// What init said is in the console's buffer; mk.slave keeps it from hanging up.
	_ = mk.master.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, _ := mk.master.Read(b)
	if !strings.Contains(string(b[:n]), "waiting for config: EOF") {
		t.Errorf("init's console says %q", b[:n])
	}
}

// TestInitMakerThatHangs: a maker that answers nothing within makerWait is killed and
// reaped, and the error comes then.
func TestInitMakerThatHangs(t *testing.T) {
	needRoot(t)

	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := filepath.Join(dir, "maker")
	err := os.WriteFile(script, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 60\n"), 0o700)
	if err != nil {
		t.Fatal(err)
	}

	saved := makerWait
	makerWait = 300 * time.Millisecond
	t.Cleanup(func() { makerWait = saved })

	t0 := time.Now()
	mk, err := spawnInitMaker(&initExe{path: script})
	if err == nil {
		mk.discard()
		t.Fatal("a maker that never answers made init")
	}

	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("the error took %s", took)
	}

	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	if pid == "" {
		t.Fatal("the maker never ran")
	}

	if _, err := os.Stat("/proc/" + pid); err == nil {
		t.Errorf("the maker (pid %s) still exists: %s", pid, procState(atoi(t, pid)))
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()

	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

// replaceStale makes an init ahead, kills the process kill names (init or its copier) and
// waits until it is a zombie, then has readyMaker replace the init: the start's view of a
// spare that died in part while it waited. The new init is discarded with the test.
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

// TestReadyMakerReplacesDeadInit: a spare's init that died waiting is replaced by one
// made on the spot (readyMaker), and the start goes on.
func TestReadyMakerReplacesDeadInit(t *testing.T) {
	needRoot(t)

	mk, dead := replaceStale(t, func(mk *initMaker) *os.Process { return mk.init })

	proc, err := mk.mapIDs(testIDs)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	})

	if mk == dead {
		t.Fatal("the dead init was returned")
	}

	if dead.init != nil || dead.sync != nil {
		t.Error("the dead init was not discarded")
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

	forked := func() *hostSide {
		t.Helper()
		pidns, err := openNS(proc.Pid, "pid")
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = pidns.Close() })

		return newHostSide(pidns)
	}

	h := forked()
	fd, err := h.procContext()
	if err != nil || fd != h.own {
		t.Fatalf("no procfs context made here: fd %d, own %d, %v", fd, h.own, err)
	}

	_ = syscall.Close(h.own)

	h = forked()
	h.makeProc = func(int) (int, error) { return -1, syscall.EINVAL }
	h.giveProc(42)
	if fd, err := h.procContext(); fd != 42 || err != nil || h.own >= 0 {
		t.Errorf("without the pidns parameter: fd %d, %v, want init's 42", fd, err)
	}

	h = forked()
	h.makeProc = func(int) (int, error) { return -1, syscall.EINVAL }
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

	if mk == stale || stale.init != nil {
		t.Fatal("the maker with the dead copier was kept")
	}

	if err := mk.alive(); err != nil {
		t.Fatalf("the new maker: %v", err)
	}
}
