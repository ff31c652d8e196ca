package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/shared/atomicfile"
	"golang.org/x/sys/unix"
)

// sigPowerOff is SIGRTMIN+3 as systemd counts (glibc's SIGRTMIN is 34):
// a clean power-off request to systemd as PID 1 (CONTAINER_INTERFACE.md).
const sigPowerOff = unix.Signal(37)

// termStopTimeout is how long a SIGTERM'd monitor lets init halt, unless
// Spec.ShutdownTimeout says otherwise.
const termStopTimeout = 30 * time.Second

// monitor is the state of the __monitor process.
type monitor struct {
	log     *slog.Logger
	spec    Spec
	cg      cgroup.Group
	shared  *shared // the memfd the console ring lives in, handed over on hold (handoff.go)
	console *ring
	mux     consoleMux // the attached console client, if any
	ln      net.Listener
	conns   sync.WaitGroup // open client connections, so finish can let them read the exit

	// Holding (hold.go): the serve loop's end, connections being served,
	// parked watches, a poke on each end of a request, and the SIGTERM
	// handler's pause.
	holdMu    sync.Mutex
	served    chan struct{}
	busy      int
	watchers  map[net.Conn]struct{}
	activity  chan struct{}
	termPause chan struct{}

	// held are handles of mount sources from the daemon (Spec.Held), by source, for the
	// first init's start only: a reboot's start looks the sources up.
	held map[string]int

	mu   sync.Mutex
	init *initProc // current init; replaced on an in-place reboot
	// initExited: init has exited and is being reaped, restarted or
	// cleaned up after: no hold until a new one runs.
	initExited bool
	startedAt  time.Time
	reboots    int
	stopping   bool // a stop was requested: no restart on reboot
	killed     bool // we sent SIGKILL
	// Who stopped it, for the exit record (Exit.Term, Exit.Requested): our own
	// SIGTERM began the stop (the host shutting down), and did so once init was
	// already ending; a stop was asked through the socket (the daemon's).
	termed    bool
	termLate  bool
	requested bool
	exit      *Exit
	done      chan struct{} // closed once stopped and cleaned up
}

// monitorMain is `__monitor <runDir>`, or `__monitor` for a spare that
// waits for its RunDir (spare.go). Its stdout and stderr go to
// RunDir/monitor.log; fd 3 is the startup socket from Start.
func monitorMain(runDir string) int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("pid", os.Getpid())

	if fd := os.Getenv(nsexec.EnvMonitorResume); fd != "" {
		return resumeMain(runDir, fd, log)
	}

	startup := os.NewFile(3, "startup")

	// Whatever else the daemon leaked to us (its sealed-exe memfd) must not
	// reach init's child.
	_ = unix.CloseRange(4, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)

	var held map[string]int // handles of mount sources, from the daemon with a spare's RunDir
	if runDir == "" {
		_, _ = cgroup.Detect() // a spare's idle work: newMonitor finds it done
		prepareInit()          // and startInit these
		warmCodecs()
		var err error
		runDir, held, err = awaitRunDir(startup)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "spare monitor:", err)
			}

			return 1
		}
	}

	m, err := newMonitor(runDir, log, nil)
	if err == nil {
		m.held = held
		err = m.start()
	} else {
		closeHeld(held)
	}

	if err != nil {
		log.Error("starting container", "err", err)
		_ = json.NewEncoder(startup).Encode(startResult{Error: err.Error()})

		return 1
	}

	log.Info("container started", "init_pid", m.init.pid(), "setup_ms", float64(m.init.setup.Microseconds())/1000)
	_ = json.NewEncoder(startup).Encode(startResult{OK: true, InitPID: m.init.pid()})
	_ = startup.Close()

	m.run()

	return 0
}

// newMonitor reads the spec and finds the cgroups; sh is the shared page of
// a resumed monitor, nil for a new one.
func newMonitor(runDir string, log *slog.Logger, sh *shared) (*monitor, error) {
	b, err := os.ReadFile(filepath.Join(runDir, specFile))
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}

	m := &monitor{
		log:       log,
		done:      make(chan struct{}),
		watchers:  map[net.Conn]struct{}{},
		activity:  make(chan struct{}, 1),
		termPause: make(chan struct{}),
	}

	err = json.Unmarshal(b, &m.spec)
	if err != nil {
		return nil, fmt.Errorf("parsing spec: %w", err)
	}

	m.shared = sh
	if sh == nil {
		m.shared, err = newShared(consoleRingSize)
		if err != nil {
			return nil, err
		}
	}

	m.console = m.shared.ring()

	m.log = log.With("instance", m.spec.Name)

	l, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}

	l.Parent = m.spec.CgroupParent
	m.cg, err = cgroup.New(m.spec.Name, l)
	if err != nil {
		return nil, err
	}

	return m, nil
}

// start creates the cgroups, starts init and opens the socket.
func (m *monitor) start() error {
	err := atomicfile.Write(filepath.Join(m.spec.RunDir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if err != nil {
		return err
	}

	// startInit makes the cgroups beside init's setup (startPlacing).
	p, err := m.startInit()
	if err != nil {
		_ = m.cg.Remove()
		return err
	}

	m.init = p
	m.startedAt = time.Now().UTC()

	go m.drainConsole(p)
	go m.termLoop()

	sock := filepath.Join(m.spec.RunDir, socketFile)
	_ = os.Remove(sock)

	ln, err := net.Listen("unix", sock)
	if err == nil {
		err = os.Chmod(sock, 0o600)
	}

	if err != nil {
		_ = p.proc.Kill()
		_, _ = p.proc.Wait()
		_ = m.cg.Remove()

		return fmt.Errorf("listening on %q: %w", sock, err)
	}

	m.ln = ln

	return nil
}

func (m *monitor) createCgroups() error {
	// Leftovers of a crashed earlier run would hold stale sub-cgroups.
	err := m.cg.Remove()
	if err != nil {
		return err
	}

	err = m.cg.Create()
	if err != nil {
		return err
	}

	err = m.cg.SetLimits(m.spec.Limits)
	if err != nil {
		_ = m.cg.Remove()
		return err
	}

	return nil
}

// termLoop: SIGTERM (host shutdown, an operator) means stop the container
// cleanly, then exit as usual. helper.go subscribes to it before anything
// else runs; a hold pauses this loop while it execs (hold.go).
func (m *monitor) termLoop() {
	for {
		select {
		case <-monitorTerm:
			m.stopOnTerm()
		case <-m.termPause:
			<-m.termPause
		}
	}
}

// stopOnTerm stops the container cleanly because the monitor got SIGTERM, as every process
// does when the host shuts down; the exit record says so (Exit.Term).
func (m *monitor) stopOnTerm() {
	m.log.Info("SIGTERM: stopping the container")
	timeout := termStopTimeout
	if m.spec.ShutdownTimeout != nil {
		timeout = *m.spec.ShutdownTimeout
	}

	m.stop(timeout, false, stopByTerm)
}

// stopBy says who asked for a stop.
type stopBy int

const (
	stopByDaemon stopBy = iota // through the socket
	stopByTerm                 // our own SIGTERM
)

// exitTerm says whether init's end e came of a stop our SIGTERM began. A SIGTERM that came
// while init was already ending counts only if init was rebooting (meant to run on); a
// power-off from inside that crossed it stays the container's own. Preconditions: mu.
func (m *monitor) exitTerm(e Exit) bool {
	return m.termed && (!m.termLate || e.Reboot)
}

// drainConsole copies console output into the ring until the master is
// closed, so init never blocks writing to /dev/console.
func (m *monitor) drainConsole(p *initProc) {
	buf := make([]byte, 32<<10)

	for {
		n, err := p.master.Read(buf)
		if n > 0 {
			_, _ = m.console.Write(buf[:n])
			m.mux.write(buf[:n])
		}

		if err != nil {
			return
		}
	}
}

// run serves the socket and waits for init, restarting it in place after a
// reboot inside, until the container stops; then it cleans up.
func (m *monitor) run() {
	m.holdMu.Lock()
	m.serveStart()
	m.holdMu.Unlock()

	go m.holdLoop()

	for {
		m.mu.Lock()
		p := m.init
		m.mu.Unlock()

		// Learn of the exit without reaping, and say so before reaping:
		// a hold under way (it holds mu) must not hand over a pid that is
		// gone with its status (hold.go).
		waitExited(p.pid())

		m.mu.Lock()
		m.initExited = true
		m.mu.Unlock()

		ps, err := p.proc.Wait()
		p.closeConsole()

		var ws syscall.WaitStatus
		if ps != nil {
			ws, _ = ps.Sys().(syscall.WaitStatus)
		}

		m.mu.Lock()
		e := exitFromStatus(ws, m.killed)
		e.Term = m.exitTerm(e)
		e.Requested = m.requested
		restart := e.Reboot && !m.stopping
		m.mu.Unlock()

		m.log.Info("init exited", "status", fmt.Sprint(err), "reason", e.Reason, "restart", restart)

		if restart && m.reboot() {
			continue
		}

		m.finish(e)

		return
	}
}

// waitExited returns once pid has exited, leaving it to reap.
func waitExited(pid int) {
	var info unix.Siginfo

	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// reboot starts a new init in place of one that asked for a reboot. The
// kernel killed the whole pid namespace with its init, so only the cgroup
// tree (systemd's sub-cgroups) needs clearing.
func (m *monitor) reboot() bool {
	p, err := m.startInit() // which makes the cgroups afresh
	if err != nil {
		m.log.Error("restarting init for reboot", "err", err)
		return false
	}

	m.mu.Lock()
	m.init = p
	m.initExited = false
	m.reboots++
	m.termLate = false // a SIGTERM during the reboot stops this init: the host's stop
	stopping := m.stopping
	m.mu.Unlock()

	go m.drainConsole(p)

	// A stop that arrived while we were restarting must still apply.
	if stopping {
		_ = p.proc.Signal(sigPowerOff)
	}

	m.log.Info("container rebooted", "init_pid", p.pid(), "setup_ms", float64(p.setup.Microseconds())/1000)

	return true
}

// finish cleans up after the container stopped, records how it ended,
// tells the watchers and closes the socket.
func (m *monitor) finish(e Exit) {
	// The record first: a daemon that finds the socket gone takes this monitor for a
	// dead one (Cleanup kills it), and a missing record means "went down while meant to
	// run" to its next start (lxd/instance/reconcile.go).
	err := writeExit(m.spec.RunDir, e)
	if err != nil {
		m.log.Error("recording exit", "err", err)
	}

	_ = m.ln.Close()
	_ = os.Remove(filepath.Join(m.spec.RunDir, socketFile))

	err = os.WriteFile(filepath.Join(m.spec.RunDir, consoleFile), m.console.Bytes(), 0o600)
	if err != nil {
		m.log.Warn("saving console log", "err", err)
	}

	err = m.cg.Remove()
	if err != nil {
		m.log.Error("removing cgroups", "err", err)
	}

	_, unmounts := m.mounts()

	err = unmountAll(unmounts)
	if err != nil {
		m.log.Error("unmounting", "err", err)
	}

	_ = os.Remove(filepath.Join(m.spec.RunDir, pidFile))

	m.mu.Lock()
	m.exit = &e
	close(m.done)
	m.mu.Unlock()

	m.log.Info("container stopped", "reason", e.Reason, "killed", e.Killed)

	// Give connected watchers and stoppers a moment to read the exit.
	m.waitConns(2 * time.Second)
}

// stop asks init to power off, escalating to SIGKILL after timeout; force
// kills at once.
func (m *monitor) stop(timeout time.Duration, force bool, by stopBy) {
	m.mu.Lock()
	defer m.mu.Unlock()

	select {
	case <-m.done:
		return
	default:
	}

	p := m.init
	first := !m.stopping
	m.stopping = true

	switch {
	case by == stopByDaemon:
		m.requested = true
	case first:
		m.termed = true
		m.termLate = m.initExited
	}

	// A frozen systemd cannot act on the signal.
	_ = m.cg.Thaw()

	if force {
		m.killed = true
		_ = p.proc.Signal(unix.SIGKILL)

		return
	}

	if !first {
		return
	}

	_ = p.proc.Signal(sigPowerOff)

	go func() {
		select {
		case <-m.done:
		case <-time.After(timeout):
			m.mu.Lock()
			m.killed = true
			cur := m.init
			m.mu.Unlock()

			m.log.Warn("init did not stop in time, killing it", "timeout", timeout)
			_ = cur.proc.Signal(unix.SIGKILL)
		}
	}()
}

func (m *monitor) state() *State {
	m.mu.Lock()
	defer m.mu.Unlock()

	s := &State{
		Name:       m.spec.Name,
		InitPID:    m.init.pid(),
		MonitorPID: os.Getpid(),
		Status:     "running",
		StartedAt:  m.startedAt,
		Reboots:    m.reboots,
		Version:    protocolVersion,
	}

	frozen, _ := m.cg.Frozen()

	switch {
	case m.stopping:
		s.Status = "stopping"
	case frozen:
		s.Status = "frozen"
	}

	return s
}

var errStopped = errors.New("container has stopped")
