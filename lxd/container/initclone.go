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

// A container's init is made by an init maker (lxd/nsexec/initns/initclone.c says why
// and how): berth-init exec'd in that constructor mode, which makes init's user, network,
// uts, ipc and pid namespaces and waits. A spare monitor starts one while it waits for
// its container (spare.go), so a start finds the exec and the namespaces done; a start
// without a spare starts one on the spot. Given the container, the monitor writes the id
// maps, and the maker becomes the container's root, copies the host's mount namespace as
// it is at that moment (with the mounts the daemon staged for this start) and forks init,
// the monitor's child (CLONE_PARENT). Init's Go runtime starts there, with no exec.

const (
	cloneMagic   = 0x43544e49 // "INTC"
	cloneVersion = 1
)

// cloneGo is the monitor's go message; cloneReply the maker's answers (initclone.c's
// structs).
type cloneGo struct{ Magic, Version uint32 }

type cloneReply struct {
	PID   int32 // 0: namespaces made; > 0: init's pid; -1: failed
	Errno int32
	What  [40]byte
}

// makerWait bounds each wait for the maker's answer. It is a few system calls away, but
// on a host running flat out those can take as long as init's whole setup.
const makerWait = setupTimeout

// initMaker is a running maker, the console it hands init (its stdio) and our end of
// init's sync socket (its fd 3).
type initMaker struct {
	cmd    *exec.Cmd
	copier *copier  // started with the maker, for init's user namespace (namespaces.go)
	ctl    *os.File // our end of its control socket
	sync   *os.File // our end of init's sync socket
	master *os.File // the console pty
	slave  *os.File
}

// spawnInitMaker starts a maker running exe and waits until its namespaces are made.
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

	var ctlChild *os.File
	mk.ctl, ctlChild, err = socketPair(unix.SOCK_SEQPACKET, "init-maker")
	if err != nil {
		_ = syncChild.Close()
		return nil, err
	}

	mk.cmd = &exec.Cmd{
		Path:       exe.path,
		Args:       exe.initArgs(),
		Env:        []string{initns.EnvClone + "=4"},
		Dir:        "/",
		Stdin:      mk.slave,
		Stdout:     mk.slave,
		Stderr:     mk.slave,
		ExtraFiles: []*os.File{syncChild, ctlChild}, // fds 3 and 4
		// Its own session, and no terminal yet: init takes the console as its
		// controlling terminal in a session of its own.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}

	err = mk.cmd.Start()
	// Closed at once: a maker that dies is then an EOF here, not a wait of makerWait.
	_ = syncChild.Close()
	_ = ctlChild.Close()

	if err != nil {
		mk.cmd = nil
		return nil, fmt.Errorf("starting the init maker: %w", err)
	}

	r, err := mk.reply()
	if err == nil && r.PID != 0 {
		err = fmt.Errorf("unexpected answer (pid %d)", r.PID)
	}

	if err != nil {
		return nil, fmt.Errorf("making init's namespaces: %w", err)
	}

	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", mk.cmd.Process.Pid))
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

// reply reads one answer of the maker; a failure it reports is an error.
func (mk *initMaker) reply() (cloneReply, error) {
	var r cloneReply

	_ = mk.ctl.SetReadDeadline(time.Now().Add(makerWait))
	b := make([]byte, binary.Size(r))
	n, err := mk.ctl.Read(b)
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

// clone gives the maker the container's id maps and has it fork init; it returns init,
// our child. The console is handed to the container's root first.
func (mk *initMaker) clone(ids idmap.Set) (*os.Process, error) {
	pid := mk.cmd.Process.Pid

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

	var msg bytes.Buffer
	_ = binary.Write(&msg, binary.NativeEndian, cloneGo{Magic: cloneMagic, Version: cloneVersion})
	_ = mk.ctl.SetWriteDeadline(time.Now().Add(makerWait))
	_, err = mk.ctl.Write(msg.Bytes())
	if err != nil {
		return nil, fmt.Errorf("telling the init maker to go: %w", err)
	}

	r, err := mk.reply()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("cloning init: the init maker ended without an answer")
	}

	if err == nil && r.PID <= 0 {
		err = fmt.Errorf("unexpected answer (pid %d)", r.PID)
	}

	if err != nil {
		return nil, fmt.Errorf("cloning init: %w", err)
	}

	// The maker exits as soon as it has answered.
	_ = mk.cmd.Wait()
	mk.cmd = nil

	// Cannot fail on Linux: init is our child (CLONE_PARENT), so its pid is ours to reap.
	proc, _ := os.FindProcess(int(r.PID))

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

// alive says why a maker made ahead can no longer serve: it, or its copier, has exited
// (died waiting, or was killed). Neither is reaped here.
func (mk *initMaker) alive() error {
	for _, p := range []struct {
		what string
		cmd  *exec.Cmd
	}{{"the init maker", mk.cmd}, {"its mount namespace copier", mk.copier.cmd}} {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
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

// closeControl closes what only the making needed: the maker's socket. The console and
// the sync socket now belong to the start.
func (mk *initMaker) closeControl() {
	if mk.ctl != nil {
		_ = mk.ctl.Close()
		mk.ctl = nil
	}
}

// discard ends a maker that will not make an init (closing its socket is enough: it
// exits at EOF; it is killed to be sure) and closes everything it was given.
func (mk *initMaker) discard() {
	if mk.copier != nil {
		mk.copier.end()
	}

	if mk.cmd != nil && mk.cmd.Process != nil {
		_ = mk.cmd.Process.Kill()
		_ = mk.cmd.Wait()
		mk.cmd = nil
	}

	mk.closeControl()

	for _, f := range []*os.File{mk.sync, mk.master, mk.slave} {
		if f != nil {
			_ = f.Close()
		}
	}

	mk.sync, mk.master, mk.slave = nil, nil, nil
}
