package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/nsexec/initns"
)

// A container's init is made ahead by an init maker (lxd/nsexec/initns/initclone.c says
// why and how): berth-init exec'd in that constructor mode, which makes init's user,
// network, uts, ipc and pid namespaces, forks init (the monitor's child, CLONE_PARENT)
// and exits. Init's Go runtime starts there, with no exec, and waits for its config. A
// spare monitor makes one while it waits for its container (spare.go), so a start finds
// init ready; a start without a spare makes one on the spot. Given the container, the
// monitor writes the id maps (mapIDs) and sends the config; init then becomes the
// container's root and copies the host's mount namespace as it is at that moment, with
// the mounts the daemon staged for this start (setup.InitMain).

// cloneReply is the maker's answer (initclone.c's struct initclone_reply).
type cloneReply struct {
	PID   int32 // > 0: init's pid; -1: failed
	Errno int32
	What  [40]byte
}

// makerWait bounds the wait for the maker's answer. It is a few system calls away, but
// on a host running flat out those can take as long as init's whole setup.
var makerWait = setupTimeout // a variable for tests

// lateAnswer is how long an answer already queued may take to read (the poller's
// deadline must lie ahead for a read to be tried at all).
const lateAnswer = 10 * time.Millisecond

// initMaker is an init made ahead: init, our child waiting for its config, the copier
// started for its user namespace, the console it was handed (its stdio) and our end of
// its sync socket (its fd 3).
type initMaker struct {
	init   *os.Process
	copier *copier  // for init's user namespace (namespaces.go)
	sync   *os.File // our end of init's sync socket
	master *os.File // the console pty
	slave  *os.File
}

// spawnInitMaker starts a maker running exe and returns the init it made, once forked.
func spawnInitMaker(exe *initExe) (*initMaker, error) {
	mk := &initMaker{}
	ok := false

	defer func() {
		if !ok {
			mk.discard()
		}
	}()

	var err error
	mk.master, mk.slave, err = pty.Open()
	if err != nil {
		return nil, fmt.Errorf("opening console pty: %w", err)
	}

	var syncChild *os.File
	mk.sync, syncChild, err = syncPair("init")
	if err != nil {
		return nil, err
	}

	ctl, ctlChild, err := socketPair(unix.SOCK_SEQPACKET, "init-maker")
	if err != nil {
		_ = syncChild.Close()
		return nil, err
	}

	defer func() { _ = ctl.Close() }()

	cmd := &exec.Cmd{
		Path: exe.path,
		Args: exe.initArgs(),
		// Init's work runs on its one locked thread: one processor is all it uses, and
		// its runtime starts fewer threads ahead for the change to the container's
		// root to reach (setup.InitMain). Systemd gets its own environment.
		Env:        []string{initns.EnvClone + "=4", "GOMAXPROCS=1"},
		Dir:        "/",
		Stdin:      mk.slave,
		Stdout:     mk.slave,
		Stderr:     mk.slave,
		ExtraFiles: []*os.File{syncChild, ctlChild}, // fds 3 and 4
		// Its own session, and no terminal yet: init takes the console as its
		// controlling terminal in a session of its own.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}

	err = cmd.Start()
	// Closed at once: a maker that dies is then an EOF here, not a wait of makerWait.
	_ = syncChild.Close()
	_ = ctlChild.Close()

	if err != nil {
		return nil, fmt.Errorf("starting the init maker: %w", err)
	}

	r, err := makerReply(ctl, makerWait)
	if err != nil || r.PID <= 0 {
		// One that answered nothing in time, or not a pid, is killed (it would wait for
		// the socket's EOF). Once it is gone, an answer it did send is queued: take it,
		// so that an init it forked is ours to kill and reap (discard), not a zombie for
		// as long as the monitor lives.
		_ = cmd.Process.Kill()
	}

	// The maker exits as soon as it has answered (or failed).
	_ = cmd.Wait()

	if err != nil && r.PID <= 0 {
		if late, lerr := makerReply(ctl, lateAnswer); lerr == nil && late.PID > 0 {
			mk.init, _ = os.FindProcess(int(late.PID))
		}
	}

	if errors.Is(err, io.EOF) {
		err = errors.New("the init maker ended without an answer")
	}

	if err == nil && r.PID <= 0 {
		err = fmt.Errorf("unexpected answer (pid %d)", r.PID)
	}

	if err != nil {
		return nil, fmt.Errorf("making init: %w", err)
	}

	// Cannot fail on Linux: init is our child (CLONE_PARENT), so its pid is ours to reap.
	mk.init, _ = os.FindProcess(int(r.PID))

	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", mk.init.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening init's user namespace: %w", err)
	}

	mk.copier, err = startCopier(exe, userns)
	_ = userns.Close()

	if err != nil {
		return nil, err
	}

	ok = true

	return mk, nil
}

// makerReply reads the maker's answer on ctl, waiting at most wait; a failure it reports
// is an error.
func makerReply(ctl *os.File, wait time.Duration) (cloneReply, error) {
	var r cloneReply

	_ = ctl.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, binary.Size(r))
	n, err := ctl.Read(b)
	if err != nil {
		return r, err
	}

	if n != len(b) {
		return r, fmt.Errorf("short answer (%d bytes)", n)
	}

	_, _ = binary.Decode(b, binary.NativeEndian, &r)
	if r.PID < 0 {
		what, _, _ := bytes.Cut(r.What[:], []byte{0})
		return r, fmt.Errorf("%s: %w", what, syscall.Errno(r.Errno))
	}

	return r, nil
}

// mapIDs gives init the container's id maps (its config, sent next, makes it the
// container's root) and hands it over: the caller reaps it. The console is handed to the
// container's root first.
func (mk *initMaker) mapIDs(ids idmap.Set) (*os.Process, error) {
	pid := mk.init.Pid

	// The container's root must be able to open its console: DAC override does not reach
	// a host-root-owned node from inside a user namespace.
	err := mk.slave.Chown(int(ids.HostUID), int(ids.HostGID+5))
	if err != nil {
		return nil, fmt.Errorf("handing the console to the container: %w", err)
	}

	for _, m := range []struct {
		file  string
		start int64
	}{{"uid_map", ids.HostUID}, {"gid_map", ids.HostGID}} {
		err = writeIDMap(fmt.Sprintf("/proc/%d/%s", pid, m.file), fmt.Sprintf("0 %d %d\n", m.start, ids.Size))
		if err != nil {
			return nil, err
		}
	}

	proc := mk.init
	mk.init = nil

	return proc, nil
}

// writeIDMap writes a user namespace's id map: one write, as the kernel wants.
func writeIDMap(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(line)
		cerr := f.Close()
		if err == nil {
			err = cerr
		}
	}

	if err != nil {
		return fmt.Errorf("writing init's %s: %w", path, err)
	}

	return nil
}

// alive says why an init made ahead can no longer serve: it, or its copier, has exited
// (died waiting, or was killed). Neither is reaped here.
func (mk *initMaker) alive() error {
	for _, p := range []struct {
		what string
		pid  int
	}{{"init made ahead", mk.init.Pid}, {"its mount namespace copier", mk.copier.cmd.Process.Pid}} {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err != nil {
			return fmt.Errorf("checking %s: %w", p.what, err)
		}

		// Linux leaves the zeroed siginfo as it is when nothing is waitable.
		if info.Signo != 0 {
			return fmt.Errorf("%s has exited", p.what)
		}
	}

	return nil
}

// discard ends an init made ahead that will not run (closing its sync socket is enough:
// it exits at EOF; it is killed to be sure and reaped) and closes everything it was given.
func (mk *initMaker) discard() {
	if mk.copier != nil {
		mk.copier.end()
	}

	if mk.init != nil {
		_ = mk.init.Kill()
		_, _ = mk.init.Wait()
		mk.init = nil
	}

	for _, f := range []*os.File{mk.sync, mk.master, mk.slave} {
		if f != nil {
			_ = f.Close()
		}
	}

	mk.sync, mk.master, mk.slave = nil, nil, nil
}
