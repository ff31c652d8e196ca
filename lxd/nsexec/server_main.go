package nsexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/fileio"
	"golang.org/x/sys/unix"
)

// The exec server is one long-lived helper per running container, so that
// an exec costs a fork instead of a process start, a cgroup move and a Go
// runtime start. The C constructor has joined every namespace but the pid
// one and left this process a host-root uid with all capabilities in the
// container's user namespace; it is outside the container's pid namespace,
// so nothing inside can see or signal it. It runs three kinds of threads:
//
//   - the fork thread joins the pid namespace (only this thread: a process
//     cannot have threads in two pid namespaces, so the Go runtime must
//     never clone from it) and forks every command, with CLONE_INTO_CGROUP
//     for init's cgroup2 group; its host uid is what lets the kernel move
//     the child there from our own group;
//   - the root thread becomes the container's root, to open ptys on the
//     container's devpts and give them to the command's user;
//   - the rest (the main loop and the runtime) keep the host uid.

// ServerArg is the hidden subcommand of an exec server.
const ServerArg = "__exec-server"

// envCgroupFD names the inherited fd of init's cgroup2 directory, if any.
const envCgroupFD = "_BERTH_NSEXEC_CGROUP_FD"

// IsServer reports whether args ask for the exec server.
func IsServer(args []string) bool { return len(args) > 1 && args[1] == ServerArg }

type server struct {
	sock     int
	initFD   int // pidfd of the container's init
	cgroupFD int // init's cgroup2 directory, -1 without one

	forkThread chan func()
	rootThread chan func()

	// mu is held from a fork until its started event is sent, and while
	// reaping, so that a command's exited event never precedes it.
	mu       sync.Mutex
	children map[int]uint64 // pid -> request id
}

// ServerMain runs an exec server until the daemon closes its socket or the
// container's init exits, and returns the exit code.
func ServerMain() int {
	sock, err := strconv.Atoi(os.Getenv(envFD))
	if err != nil || sock < 3 {
		fmt.Fprintln(os.Stderr, "berth exec server: not started by the daemon")
		return 2
	}

	s := &server{sock: sock, initFD: 4, cgroupFD: -1, children: map[int]uint64{}}

	cg := os.Getenv(envCgroupFD)
	if cg != "" {
		s.cgroupFD, err = strconv.Atoi(cg)
		if err != nil {
			return s.fatal(fmt.Errorf("bad %s %q", envCgroupFD, cg))
		}
	}

	// Nothing inherited may reach a command.
	err = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != nil {
		return s.fatal(fmt.Errorf("marking fds close-on-exec: %w", err))
	}

	// Before the first fork, so that no exit goes unnoticed.
	exits := make(chan os.Signal, 1)
	signal.Notify(exits, syscall.SIGCHLD)

	go s.reap(exits)

	conf, err := readConfinement()
	if err != nil {
		return s.fatal(err)
	}

	s.forkThread, err = lockedThread(func() error {
		err := unix.Setns(s.initFD, unix.CLONE_NEWPID)
		if err != nil {
			return err
		}

		return confineForkThread(conf)
	})
	if err != nil {
		return s.fatal(fmt.Errorf("preparing the fork thread: %w", err))
	}

	s.rootThread, err = lockedThread(func() error { return setCreds(0, 0, []int{}) })
	if err != nil {
		return s.fatal(err)
	}

	s.send(event{Kind: eventReady}, nil)

	return s.serve()
}

func (s *server) fatal(err error) int {
	s.send(event{Kind: eventFailed, Error: err.Error(), Code: 1}, nil)
	return 1
}

// lockedThread starts a goroutine on a thread of its own, prepared by setup
// (which may change what the thread is: its namespaces, its credentials),
// and returns a channel of functions to run there. The goroutine never
// unlocks, so the runtime never schedules anything else on that thread; it
// would retire it if the goroutine ever returned.
func lockedThread(setup func() error) (chan func(), error) {
	ch := make(chan func())
	errc := make(chan error, 1)

	go func() {
		// LockOSThread first: it starts the runtime's template thread, which
		// makes every later thread, from this still unchanged thread.
		runtime.LockOSThread()

		err := setup()
		errc <- err

		if err != nil {
			return
		}

		for f := range ch {
			f()
		}
	}()

	return ch, <-errc
}

// on runs f on thread ch and waits for it.
func on(ch chan func(), f func()) {
	done := make(chan struct{})
	ch <- func() { f(); close(done) }
	<-done
}

// serve handles requests until the socket closes or init exits.
func (s *server) serve() int {
	buf := make([]byte, maxConfig)
	oob := make([]byte, unix.CmsgSpace(3*4))

	for {
		fds := []unix.PollFd{{Fd: int32(s.sock), Events: unix.POLLIN}, {Fd: int32(s.initFD), Events: unix.POLLIN}}

		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}

		if err != nil || fds[1].Revents != 0 {
			// Init is gone, and with it the pid namespace: its commands
			// are being killed. Report how they ended, then go.
			s.awaitChildren(time.Second)
			return 0
		}

		n, oobn, flags, _, err := unix.Recvmsg(s.sock, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}

		if err != nil || n == 0 {
			return 0 // the daemon closed the socket
		}

		stdio := fileio.Rights(oob[:oobn])

		var r request

		err = json.Unmarshal(buf[:n], &r)
		if err != nil || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(r.Command) == 0 {
			closeAll(stdio)
			s.send(event{Kind: eventFailed, ID: r.ID, Error: "malformed exec request", Code: 1}, nil)

			continue
		}

		s.start(r, stdio)
		closeAll(stdio)
	}
}

// start runs one command and reports it started or failed.
func (s *server) start(r request, stdio []int) {
	fail := func(code int, err error) {
		s.send(event{Kind: eventFailed, ID: r.ID, Error: err.Error(), Code: code}, nil)
	}

	if !r.PTY && len(stdio) != 3 {
		fail(1, fmt.Errorf("exec request with %d stdio fds", len(stdio)))
		return
	}

	// The user's files are the container's: read them as its root, not as host root.
	var env []string
	var groups []int
	var cwd string

	on(s.rootThread, func() { env, groups, cwd = r.userContext() })

	fi, err := os.Stat(cwd)
	if err == nil && !fi.IsDir() {
		err = unix.ENOTDIR
	}

	if err != nil {
		fail(1, fmt.Errorf("changing directory to %q: %w", cwd, unwrapPathError(err)))
		return
	}

	path, err := lookPath(r.Command[0], envValue(env, "PATH"), cwd)
	if err != nil {
		fail(execCode(err), err)
		return
	}

	files := make([]uintptr, 0, 3)
	for _, fd := range stdio {
		files = append(files, uintptr(fd))
	}

	var master, slave *os.File

	if r.PTY {
		on(s.rootThread, func() { master, slave, err = allocPTY(r.config) })

		if err != nil {
			fail(1, err)
			return
		}

		defer func() { _ = master.Close(); _ = slave.Close() }()

		files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
	}

	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}

	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setsid:      true, // never the daemon's terminal
			Setctty:     r.PTY,
			Ctty:        0,
			Credential:  &syscall.Credential{Uid: r.UID, Gid: r.GID, Groups: gids},
			UseCgroupFD: s.cgroupFD >= 0,
			CgroupFD:    s.cgroupFD,
			PidFD:       &pidfd,
		},
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	var pid int

	on(s.forkThread, func() {
		// A keyring per command: each joins the one made for it.
		err = confine.JoinSessionKeyring()
		if err == nil {
			pid, err = syscall.ForkExec(path, r.Command, attr)
		}
	})

	if err != nil {
		fail(execCode(err), fmt.Errorf("executing %q: %w", r.Command[0], err))
		return
	}

	s.children[pid] = r.ID

	rights := []int{pidfd}
	if master != nil {
		rights = append(rights, int(master.Fd()))
	}

	s.send(event{Kind: eventStarted, ID: r.ID, PID: pid, PTY: master != nil}, rights)
	_ = unix.Close(pidfd)
}

// awaitChildren waits, at most timeout, until every command was reaped.
func (s *server) awaitChildren(timeout time.Duration) {
	deadline := time.Now().Add(timeout)

	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := len(s.children)
		s.mu.Unlock()

		if n == 0 {
			return
		}

		time.Sleep(5 * time.Millisecond)
	}
}

// reap collects exited commands and reports them.
func (s *server) reap(exits chan os.Signal) {
	for range exits {
		s.mu.Lock()

		for {
			var ws unix.WaitStatus

			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}

			if err != nil || pid <= 0 {
				break
			}

			id, ok := s.children[pid]
			if ok {
				delete(s.children, pid)
				s.send(event{Kind: eventExited, ID: id, Status: int(ws)}, nil)
			}
		}

		s.mu.Unlock()
	}
}

// send writes one event, with fds. A failure means the daemon is gone: the
// main loop notices and ends.
func (s *server) send(ev event, fds []int) {
	b, _ := json.Marshal(ev)

	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}

	_ = unix.Sendmsg(s.sock, b, oob, nil, unix.MSG_NOSIGNAL)
}

// unwrapPathError drops the path of an *os.PathError (the caller names it).
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}

	return err
}
