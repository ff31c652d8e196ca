package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/nsexec"
	"golang.org/x/sys/unix"
)

// Holding: a Go runtime per container costs ~2 MB of private memory (heap
// arenas, a thread per P, the daemon's package state), most of the host's
// per-container overhead. Once init runs and nothing is in flight for
// holdIdle, the monitor execve()s its own binary as the holder
// (lxd/nsexec/hold.c): C only, one epoll loop, a few hundred KB. It is the
// same process, so it stays init's parent and keeps the pid in monitor.pid,
// the console, the socket and the watch connections (handoff.go). It answers
// the cheap requests itself and, for anything else, for init's exit and for
// SIGTERM, execve()s back into Go (resume.go), which carries on exactly as
// before and holds again once idle.
//
//	__monitor (Go) ──idle──▶ __monitor (C holder) ──stop/freeze/stats/…,
//	      ▲                                        init exited, SIGTERM──┐
//	      └──────────────── execve, $_BERTH_MONITOR_RESUME ◀──────────────┘
//
// Never held: a stopping container, an attached console client (its stream
// stays with Go until it detaches), a request being served.

// holdIdle is how long the Go monitor stays once idle: a client polling a
// Go-only request (stats) then costs one round trip to Go per holdIdle, not
// one per request.
const holdIdle = time.Second

// enter marks a connection being served; leave ends that. Watches waiting
// for the exit are parked instead: they travel with the hold.
func (m *monitor) enter() {
	m.holdMu.Lock()
	m.busy++
	m.holdMu.Unlock()
}

func (m *monitor) leave() {
	m.holdMu.Lock()
	m.busy--
	m.holdMu.Unlock()

	select {
	case m.activity <- struct{}{}:
	default:
	}
}

func (m *monitor) park(c net.Conn) {
	m.holdMu.Lock()
	m.watchers[c] = struct{}{}
	m.holdMu.Unlock()
	m.leave()
}

func (m *monitor) unpark(c net.Conn) {
	m.holdMu.Lock()
	delete(m.watchers, c)
	m.busy++
	m.holdMu.Unlock()
}

// holdLoop holds the monitor once it has been idle for holdIdle.
func (m *monitor) holdLoop() {
	t := time.NewTimer(holdIdle)
	defer t.Stop()

	for {
		select {
		case <-m.done:
			return
		case <-m.activity:
			t.Reset(holdIdle)
		case <-t.C:
			err := m.hold()
			if err != nil && !errors.Is(err, errNotIdle) {
				m.log.Warn("not holding", "err", err)
			}

			// Also after a failed exec: try again, but not in a loop.
			t.Reset(holdIdle)
		}
	}
}

var errNotIdle = errors.New("monitor is busy")

// hold hands the monitor over to the holder. It returns only if it did not.
func (m *monitor) hold() error {
	m.holdMu.Lock()
	defer m.holdMu.Unlock()

	if !m.idleLocked() {
		return errNotIdle
	}

	ul, ok := m.ln.(*net.UnixListener)
	if !ok {
		return errors.New("the monitor socket is not a unix listener")
	}

	// Stop accepting (without closing: the holder serves this socket); a
	// connection accepted meanwhile makes us busy again.
	_ = ul.SetDeadline(time.Unix(1, 0))
	served := m.served

	m.holdMu.Unlock()
	<-served
	m.holdMu.Lock()

	defer func() {
		_ = ul.SetDeadline(time.Time{})
		m.serveStart()
	}()

	if !m.idleLocked() {
		return errNotIdle
	}

	// The SIGTERM handler must not take a signal we then exec away from.
	m.termPause <- struct{}{}
	defer func() { m.termPause <- struct{}{} }()

	// mu stays held until the exec: the run loop must not reap init
	// meanwhile (it learns of the exit first, then takes mu).
	m.mu.Lock()
	defer m.mu.Unlock()

	if !m.idleInit() {
		return errNotIdle
	}

	return m.handOver(ul)
}

// idleLocked: nothing in flight, init running; holdMu held. With mu held
// use idleInit.
func (m *monitor) idleLocked() bool {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.idleInit()
}

// idleInit: init runs and no stop is under way; mu held.
func (m *monitor) idleInit() bool {
	select {
	case <-m.done:
		return false
	default:
	}

	return m.busy == 0 && !m.stopping && m.exit == nil && m.init != nil && !m.initExited
}

// handOver writes the shared page and execs the holder; holdMu and mu held.
func (m *monitor) handOver(ul *net.UnixListener) error {
	p := m.init
	st := State{
		Name:       m.spec.Name,
		InitPID:    p.pid(),
		MonitorPID: os.Getpid(),
		StartedAt:  m.startedAt,
		Reboots:    m.reboots,
		Version:    protocolVersion,
	}

	tpl, statusAt, err := stateTemplate(st)
	if err != nil {
		return err
	}

	frozenPath, frozenFmt := cgroup.FreezeStateFile(m.cg)
	if len(frozenPath) >= handoffPathMax {
		return fmt.Errorf("cgroup path %q too long to hand over", frozenPath)
	}

	var (
		passed []int // fds to inherit
		opened []int // fds opened here, closed again if the exec fails
	)

	defer func() {
		for _, fd := range opened {
			_ = unix.Close(fd)
		}
	}()

	pidfd, err := unix.PidfdOpen(p.pid(), 0)
	if err != nil {
		return fmt.Errorf("opening init's pidfd: %w", err)
	}

	opened = append(opened, pidfd)

	master, err := rawFD(p.master)
	if err != nil {
		return err
	}

	slave, err := rawFD(p.slave)
	if err != nil {
		return err
	}

	passed = append(passed, master, slave)

	lnFD, err := dupFD(ul)
	if err != nil {
		return err
	}

	opened = append(opened, lnFD)

	if len(m.watchers) > handoffMaxConns {
		return fmt.Errorf("%d watch connections, the holder takes %d", len(m.watchers), handoffMaxConns)
	}

	n := 0

	for c := range m.watchers {
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return errors.New("a watch connection is not a unix connection")
		}

		fd, err := dupFD(uc)
		if err != nil {
			return err
		}

		opened = append(opened, fd)
		m.shared.putFD(offConns+8*n, fd)
		m.shared.put32(offConns+8*n+4, connWatch)
		n++
	}

	s := m.shared
	s.put32(offNConns, uint32(n))
	s.put32(offInitPID, uint32(p.pid()))
	s.putFD(offPidFD, pidfd)
	s.putFD(offMaster, master)
	s.putFD(offSlave, slave)
	s.putFD(offListener, lnFD)
	s.put32(offFrozenFmt, uint32(frozenFmt))
	clear(s.mem[offFrozen : offFrozen+handoffPathMax])
	copy(s.mem[offFrozen:], frozenPath)
	s.put32(offStateLen, uint32(len(tpl)))
	s.put32(offStatusAt, uint32(statusAt))
	copy(s.mem[offState:], tpl)
	s.put32(offReboots, uint32(st.Reboots))
	s.put64(offStartedNs, uint64(st.StartedAt.UnixNano()))
	s.put32(offTerm, 0)

	passed = append(passed, opened...)
	passed = append(passed, int(s.f.Fd()))

	for _, fd := range passed {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
		if err != nil {
			return fmt.Errorf("passing fd %d on: %w", fd, err)
		}
	}

	defer func() {
		for _, fd := range passed {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}()

	env := []string{nsexec.EnvMonitorHold + "=" + strconv.Itoa(int(s.f.Fd()))}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, nsexec.EnvMonitorHold+"=") && !strings.HasPrefix(kv, nsexec.EnvMonitorResume+"=") {
			env = append(env, kv)
		}
	}

	// SIGTERM stays blocked on the exec'ing thread, so one that comes now
	// waits for the holder's signalfd; one Go took already stops the hold.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var term, old unix.Sigset_t

	term.Val[(unix.SIGTERM-1)/64] |= 1 << ((unix.SIGTERM - 1) % 64)

	err = unix.PthreadSigmask(unix.SIG_BLOCK, &term, &old)
	if err != nil {
		return fmt.Errorf("blocking SIGTERM: %w", err)
	}

	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }()

	select {
	case sig := <-monitorTerm:
		monitorTerm <- sig // the handler, resumed, stops the container

		return errors.New("SIGTERM arrived")
	default:
	}

	// The run directory goes on the command line: a monitor that began as a spare
	// (spare.go) was started without one, and the Go side it resumes needs it.
	err = syscall.Exec("/proc/self/exe", []string{os.Args[0], helperMonitor, m.spec.RunDir}, env)

	return fmt.Errorf("executing the holder: %w", err)
}

// stateTemplate is State as JSON with an empty status, and where the
// holder puts its status.
func stateTemplate(st State) ([]byte, int, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, 0, err
	}

	const key = `"status":"`

	at := strings.Index(string(b), key+`"`)
	if at < 0 || len(b) > handoffStateMax {
		return nil, 0, fmt.Errorf("cannot hand over the state %s", b)
	}

	return b, at + len(key), nil
}

// rawFD is f's descriptor, without Fd's switch to blocking mode.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}

	fd := -1

	err = rc.Control(func(u uintptr) { fd = int(u) })

	return fd, err
}

// dupFD duplicates a socket's descriptor (close-on-exec).
func dupFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}

	fd := -1

	cerr := rc.Control(func(u uintptr) { fd, err = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 3) })
	if cerr != nil {
		return -1, cerr
	}

	if err != nil {
		return -1, fmt.Errorf("duplicating a socket: %w", err)
	}

	return fd, nil
}
