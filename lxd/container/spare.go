package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// A monitor's exec costs tens of milliseconds before its first line runs: the kernel
// maps the daemon's binary and the Go runtime and package initialisation fault in its
// pages. A start pays that on its critical path unless a monitor was started before it
// was needed: Spares keeps one such spare, `__monitor` without a RunDir, waiting on its
// startup socket (fd 3) for the one line that makes it a container's monitor:
//
//	daemon ── {"run_dir": RunDir} ──▶ spare: opens RunDir/monitor.log as stdout and
//	                                  stderr
//	daemon ◀── {"run_dir": RunDir} ── the spare is the container's monitor from now on,
//	                                  and runs exactly as `__monitor RunDir`
//	daemon ◀── startResult ────────── (monitorMain)
//
// Until the echo, the spare has done nothing for the container: a spare that died
// (killed, or exiting as its last threads end) is replaced by a new monitor.
//
// A spare is the daemon's child like any monitor; it runs nothing of a container until
// it is given one, and it exits when the socket closes without a RunDir (the daemon
// exited or closed Spares). A start's caller refills Spares (Refill) once the start is
// through: the next spare's work (the daemon binary's exec and Go runtime, berth-init's
// twice for the init maker and the copier, init's Go runtime, a network namespace) would
// take the CPU the start's init and then systemd's own exec need on a small host.

// spawned is a monitor process and our end of its startup socket.
type spawned struct {
	cmd    *exec.Cmd
	sock   *os.File
	waited chan struct{} // closed once the process is reaped
}

// spawnMonitor starts `exe __monitor` [runDir] with the startup socket as fd 3. A spare
// (runDir "") writes to stderr (the daemon's) until it is given its RunDir.
func spawnMonitor(exe, runDir string, stderr *os.File) (*spawned, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating startup socket: %w", err)
	}

	_ = unix.SetNonblock(fds[0], true) // ours: the runtime poller gives it deadlines
	ours, theirs := os.NewFile(uintptr(fds[0]), "startup"), os.NewFile(uintptr(fds[1]), "startup-monitor")
	defer func() { _ = theirs.Close() }()

	args := []string{exe, helperMonitor}
	if runDir != "" {
		args = append(args, runDir)
	}

	cmd := &exec.Cmd{
		Path:       exe,
		Args:       args,
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout:     stderr,
		Stderr:     stderr,
		ExtraFiles: []*os.File{theirs},
		Dir:        "/",
		// Own session: the daemon's process group and terminal signals do
		// not reach the monitor.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}

	err = cmd.Start()
	if err != nil {
		_ = ours.Close()
		return nil, fmt.Errorf("spawning monitor: %w", err)
	}

	// The monitor is our child until we exit; reap it whenever it ends.
	p := &spawned{cmd: cmd, sock: ours, waited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.waited)
	}()

	return p, nil
}

// kill ends a spawned monitor that has not started a container and reaps it.
func (p *spawned) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.sock.Close()
	<-p.waited
}

// alive says whether the process has not ended.
func (p *spawned) alive() bool {
	select {
	case <-p.waited:
		return false
	default:
		return true
	}
}

// assign is the daemon's line to a spare, and the spare's echo: the RunDir it serves, and
// the sources of the handles (Spec.Held) that come with the line, in their order.
type assign struct {
	RunDir string   `json:"run_dir"`
	Held   []string `json:"held,omitempty"`
}

// maxHeld bounds the handles one assignment carries (lxcfs has nine files).
const maxHeld = 32

// handOverWait bounds the wait for a spare's echo (it waits idle, so it answers at once
// on any host that can start a container at all).
const handOverWait = 10 * time.Second

// handOver gives spare p its RunDir, and copies of held, and waits for its echo.
func (p *spawned) handOver(runDir string, held map[string]*os.File) error {
	a := assign{RunDir: runDir}
	var fds []int
	for src, f := range held {
		if len(fds) == maxHeld {
			break
		}

		a.Held = append(a.Held, src)
		fds = append(fds, int(f.Fd()))
	}

	line, _ := json.Marshal(a)
	line = append(line, '\n')
	_ = p.sock.SetDeadline(time.Now().Add(handOverWait))
	defer func() { _ = p.sock.SetDeadline(time.Time{}) }()

	// Not sent whole (never, on an idle socketpair with a line this short): the start
	// spawns a monitor of its own.
	err := setup.SendLine(p.sock, line, fds...)
	if err != nil {
		return err
	}

	// Byte by byte: what follows on the socket is the startup result, read elsewhere.
	echo := make([]byte, 0, len(line))
	b := make([]byte, 1)
	for len(echo) < len(line) {
		_, err := p.sock.Read(b)
		if err != nil {
			return err
		}

		echo = append(echo, b[0])
	}

	if string(echo) != string(line) {
		return fmt.Errorf("the spare monitor answered %q", echo)
	}

	return nil
}

// Spares keeps a spare monitor ready for the next start (above). The zero value is not
// usable: NewSpares.
type Spares struct {
	exe string
	log *slog.Logger

	mu      sync.Mutex
	ready   *spawned
	filling bool
	closed  bool
}

// NewSpares returns Spares for monitors of exe (the daemon's sealed copy of itself) and
// starts the first spare in the background (none for exe "": every start spawns).
func NewSpares(exe string, log *slog.Logger) *Spares {
	s := &Spares{exe: exe, log: log}
	s.Refill()
	return s
}

// take returns the ready spare, or nil. The caller refills once its start is through.
func (s *Spares) take() *spawned {
	s.mu.Lock()
	p := s.ready
	s.ready = nil
	s.mu.Unlock()

	if p != nil && !p.alive() {
		_ = p.sock.Close()
		return nil
	}

	return p
}

// Refill starts a spare in the background unless one is ready or on its way.
func (s *Spares) Refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exe == "" || s.closed || s.ready != nil || s.filling {
		return
	}

	s.filling = true
	go func() {
		p, err := spawnMonitor(s.exe, "", os.Stderr)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.filling = false
		if err != nil {
			s.log.Warn("starting a spare monitor", "err", err)
			return
		}

		if s.closed {
			go p.kill()
			return
		}

		s.ready = p
	}()
}

// Close ends the spare, if any, and starts no more. (A daemon that exits need not: its
// spare sees the socket close and exits.)
func (s *Spares) Close() {
	s.mu.Lock()
	p := s.ready
	s.ready, s.closed = nil, true
	s.mu.Unlock()

	if p != nil {
		p.kill()
	}
}

// awaitRunDir is a spare monitor's wait for its container (fd 3, above): it returns the
// RunDir once it has made RunDir/monitor.log its stdout and stderr, and the handles that
// came with it, by source. An error (EOF: the daemon is gone) means there is no container
// to serve.
func awaitRunDir(startup *os.File) (string, map[string]int, error) {
	a, held, line, err := receiveAssign(startup)
	if err != nil {
		return "", nil, err
	}

	err = redirectToLog(a.RunDir)
	if err == nil {
		_, err = startup.Write(line)
		if err != nil {
			err = fmt.Errorf("answering the daemon: %w", err)
		}
	}

	if err != nil {
		closeHeld(held)
		return "", nil, err
	}

	return a.RunDir, held, nil
}

// receiveAssign reads the daemon's assignment and its handles from startup; on error no
// handle stays open.
func receiveAssign(startup *os.File) (assign, map[string]int, []byte, error) {
	var a assign
	line, fds, err := readAssign(startup)
	if err != nil {
		return a, nil, nil, err
	}

	err = json.Unmarshal(line, &a)
	if err == nil && !filepath.IsAbs(a.RunDir) {
		err = errors.New("the run dir is not an absolute path")
	}

	if err == nil && len(fds) != len(a.Held) {
		err = fmt.Errorf("%d handles for %d sources", len(fds), len(a.Held))
	}

	if err != nil {
		closeFDs(fds)
		return a, nil, nil, fmt.Errorf("reading the run dir: %w", err)
	}

	held := map[string]int{}
	for i, src := range a.Held {
		if _, dup := held[src]; dup {
			closeFDs(fds)
			return a, nil, nil, fmt.Errorf("reading the run dir: two handles of %q", src)
		}

		held[src] = fds[i]
	}

	return a, held, line, nil
}

// redirectToLog makes runDir's monitor log this process's stdout and stderr.
func redirectToLog(runDir string) error {
	logf, err := os.OpenFile(filepath.Join(runDir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening monitor log: %w", err)
	}

	defer func() { _ = logf.Close() }()

	for _, fd := range []int{1, 2} {
		err = unix.Dup3(int(logf.Fd()), fd, 0)
		if err != nil {
			return fmt.Errorf("redirecting output to the monitor log: %w", err)
		}
	}

	return nil
}

// readAssign reads the daemon's line from startup (blocking) and the fds that came
// with its first bytes. Nothing follows the line until the spare echoes it, so reading
// ahead takes nothing else.
func readAssign(startup *os.File) ([]byte, []int, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*maxHeld))

	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(int(startup.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}

	if err != nil {
		return nil, nil, err
	}

	fds, err := setup.ParseRights(oob[:oobn], flags)
	line := buf[:n]
	if err == nil && n == 0 {
		err = io.EOF
	}

	if err == nil && line[n-1] != '\n' {
		var rest []byte
		rest, err = bufio.NewReader(io.LimitReader(startup, 64<<10)).ReadBytes('\n')
		line = append(line, rest...)
	}

	if err != nil {
		closeFDs(fds)
		return nil, nil, err
	}

	return line, fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
