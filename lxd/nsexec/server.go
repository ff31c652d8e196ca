package nsexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrServerGone is a request the exec server could not take: it exited (its
// container stopped) or was closed. A fresh server may take it.
var ErrServerGone = errors.New("exec server gone")

// ServerOptions describe the exec server of one container.
type ServerOptions struct {
	Exe     string // the daemon's sealed binary (sys.SealedSelfExe)
	InitPID int    // host pid of the container's init

	// Prepare runs with the server's host pid before it joins the
	// namespaces: it puts the server in init's cgroup v1 groups, which
	// every command then inherits.
	Prepare func(pid int) error

	// Cgroup is init's cgroup2 directory: commands are created in it
	// (CLONE_INTO_CGROUP), while the server itself stays out of the tree
	// systemd manages inside. nil leaves them in the server's own group.
	Cgroup *os.File

	// Seccomp is the container's seccomp program, loaded once on the
	// server's fork thread, which every command inherits; a deny-list
	// filter only (confine.Filter.Allowlist false): the Go runtime runs
	// on that thread. nil: none.
	Seccomp []byte

	// IdleTimeout closes the server once nothing ran for that long (0:
	// never), so that idle containers carry no helper.
	IdleTimeout time.Duration
}

// Server is the daemon's end of a container's exec server (server_main.go):
// Start runs a command at the cost of a fork. Safe for concurrent use.
type Server struct {
	pid     int
	initPID int
	sock    *os.File
	done    chan struct{} // closed once the server is gone

	mu      sync.Mutex
	closed  bool
	next    uint64
	calls   map[uint64]chan startResult
	running map[uint64]*Process
	idle    *time.Timer
	timeout time.Duration
}

type startResult struct {
	p   *Process
	err error
}

// StartServer starts the exec server of a container and returns once it
// serves.
func StartServer(o ServerOptions) (*Server, error) {
	var extra []*os.File
	if o.Cgroup != nil {
		extra = append(extra, o.Cgroup) // fd 5
	}

	cmd, sock, err := spawnHelper(o.Exe, o.InitPID, o.Seccomp, []string{"berth-exec-server", ServerArg}, extra, func(cmd *exec.Cmd) {
		if o.Cgroup != nil {
			cmd.Env = append(cmd.Env, envCgroupFD+"=5")
		}
	})
	if err != nil {
		return nil, err
	}

	err = serverHandshake(cmd, sock, o)
	if err != nil {
		_ = sock.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		return nil, err
	}

	s := &Server{
		pid:     cmd.Process.Pid,
		initPID: o.InitPID,
		sock:    sock,
		done:    make(chan struct{}),
		calls:   map[uint64]chan startResult{},
		running: map[uint64]*Process{},
		timeout: o.IdleTimeout,
	}

	s.armIdle()

	go s.read(cmd)

	return s, nil
}

// serverHandshake places the server, sends the header and waits for ready.
func serverHandshake(cmd *exec.Cmd, sock *os.File, o ServerOptions) error {
	_ = sock.SetDeadline(time.Now().Add(startTimeout))
	defer func() { _ = sock.SetDeadline(time.Time{}) }()

	if o.Prepare != nil {
		err := o.Prepare(cmd.Process.Pid)
		if err != nil {
			return err
		}
	}

	return serveHandshake(sock, Namespaces&^unix.CLONE_NEWPID, "exec server")
}

// serveHandshake sends a server's header (the namespaces its constructor joins) and waits
// for the Go side's ready message: the exec and file servers start the same way.
func serveHandshake(sock *os.File, nsflags uint32, what string) error {
	h := header{Magic: magic, Version: version, PidFD: 4, NSFlags: nsflags, Mode: modeServe}

	_, err := sock.Write(h.bytes())
	if err != nil {
		return fmt.Errorf("sending %s header: %w", what, err)
	}

	b, fds, err := recv(sock)
	closeAll(fds)

	if err != nil {
		return fmt.Errorf("waiting for the %s: %w", what, err)
	}

	// The constructor's binary reply is a failure; the Go side speaks JSON.
	if len(b) > 0 && b[0] != '{' {
		r, err := parseReply(b)
		if err != nil {
			return err
		}

		return r.err()
	}

	var ev event

	err = json.Unmarshal(b, &ev)
	if err != nil {
		return fmt.Errorf("decoding %s message: %w", what, err)
	}

	if ev.Kind != eventReady {
		return fmt.Errorf("starting %s: %s", what, ev.Error)
	}

	return nil
}

// Pid is the server's host pid.
func (s *Server) Pid() int { return s.pid }

// InitPID is the pid of the init whose container the server serves.
func (s *Server) InitPID() int { return s.initPID }

// Done is closed once the server is gone.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close ends the server. Commands it started keep running (and are reaped
// by the container's init); their Wait reports ErrServerGone.
func (s *Server) Close() { _ = s.sock.Close() }

// Start runs o.Command (o.Exe, o.InitPID and o.Prepare are the server's)
// and returns once it has been exec'd, or with an *ExecError if that failed
// inside the container, or ErrServerGone.
func (s *Server) Start(o Options) (*Process, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("no command")
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrServerGone
	}

	s.next++
	id := s.next
	ch := make(chan startResult, 1)
	s.calls[id] = ch
	s.stopIdle()
	s.mu.Unlock()

	err := s.send(id, o)
	if err != nil {
		s.forget(id)
		return nil, err
	}

	t := time.NewTimer(startTimeout)
	defer t.Stop()

	select {
	case r := <-ch:
		return r.p, r.err
	case <-t.C:
		// A late start is killed by read, which no longer finds the call.
		s.forget(id)
		return nil, errors.New("timed out waiting for the exec server")
	}
}

// send writes the request for id, with the command's stdio unless it gets
// a pty.
func (s *Server) send(id uint64, o Options) error {
	b, err := json.Marshal(request{ID: id, config: config{Command: o.Command, Env: o.Env, UID: o.UID, GID: o.GID,
		Cwd: o.Cwd, PTY: o.PTY, Width: o.Width, Height: o.Height}})
	if err != nil {
		return err
	}

	if len(b) > maxConfig {
		return fmt.Errorf("command and environment exceed %d bytes", maxConfig)
	}

	var oob []byte

	if !o.PTY {
		stdio, closeNull, err := stdioFds(o)
		if err != nil {
			return err
		}

		defer closeNull()

		oob = unix.UnixRights(stdio...)
	}

	rc, err := s.sock.SyscallConn()
	if err != nil {
		return ErrServerGone
	}

	var serr error

	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}

	// Only a dead socket means the server is gone (a fresh one may take the
	// request); anything else, such as a message too large, is this request's.
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrServerGone, err)
	}

	if err != nil {
		return fmt.Errorf("sending exec request: %w", err)
	}

	return nil
}

// stdioFds are the fds of o's stdio, /dev/null for the missing ones.
func stdioFds(o Options) ([]int, func(), error) {
	var null *os.File

	closeNull := func() {
		if null != nil {
			_ = null.Close()
		}
	}

	fds := make([]int, 0, 3)

	for _, f := range []*os.File{o.Stdin, o.Stdout, o.Stderr} {
		if f == nil {
			if null == nil {
				var err error

				null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
				if err != nil {
					return nil, nil, err
				}
			}

			f = null
		}

		fds = append(fds, int(f.Fd()))
	}

	return fds, closeNull, nil
}

// forget drops a call nobody waits for any more.
func (s *Server) forget(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()

	delete(s.calls, id)
	s.armIdle()
}

// read dispatches the server's events until its socket fails, then fails
// what is pending and reaps the server.
func (s *Server) read(cmd *exec.Cmd) {
	for {
		b, fds, err := recv(s.sock)
		if err != nil {
			break
		}

		var ev event

		err = json.Unmarshal(b, &ev)
		if err != nil {
			closeAll(fds)
			continue
		}

		s.dispatch(ev, fds)
	}

	s.mu.Lock()
	s.closed = true
	s.stopIdle()

	for id, ch := range s.calls {
		ch <- startResult{err: ErrServerGone}
		delete(s.calls, id)
	}

	for id, p := range s.running {
		close(p.exit)
		delete(s.running, id)
	}
	s.mu.Unlock()

	_ = s.sock.Close()
	close(s.done)
	_ = cmd.Wait()
}

func (s *Server) dispatch(ev event, fds []int) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch ev.Kind {
	case eventStarted:
		p := newServedProcess(ev, fds)

		ch, ok := s.calls[ev.ID]
		if !ok {
			_ = p.Kill()
			p.closePTY()

			return
		}

		delete(s.calls, ev.ID)
		s.running[ev.ID] = p
		ch <- startResult{p: p}

	case eventFailed:
		closeAll(fds)

		ch, ok := s.calls[ev.ID]
		if ok {
			delete(s.calls, ev.ID)
			ch <- startResult{err: &ExecError{Code: ev.Code, Msg: ev.Error}}
		}

		s.armIdle()

	case eventExited:
		closeAll(fds)

		p, ok := s.running[ev.ID]
		if ok {
			delete(s.running, ev.ID)
			p.exit <- ev.Status
		}

		s.armIdle()

	default:
		closeAll(fds)
	}
}

// armIdle starts the idle timer when nothing is pending. Called with mu.
func (s *Server) armIdle() {
	if s.timeout <= 0 || s.closed || len(s.calls) > 0 || len(s.running) > 0 {
		return
	}

	s.stopIdle()
	s.idle = time.AfterFunc(s.timeout, s.closeIfIdle)
}

// stopIdle stops the idle timer. Called with mu.
func (s *Server) stopIdle() {
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
}

func (s *Server) closeIfIdle() {
	s.mu.Lock()
	idle := len(s.calls) == 0 && len(s.running) == 0
	s.mu.Unlock()

	if idle {
		s.Close()
	}
}
