package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
// exited or closed Spares). Spares refills itself in the background after each use.

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

// assign is the daemon's line to a spare, and the spare's echo: the RunDir it serves.
type assign struct {
	RunDir string `json:"run_dir"`
}

// handOverWait bounds the wait for a spare's echo (it waits idle, so it answers at once
// on any host that can start a container at all).
const handOverWait = 10 * time.Second

// handOver gives spare p its RunDir and waits for its echo.
func (p *spawned) handOver(runDir string) error {
	line, _ := json.Marshal(assign{RunDir: runDir})
	line = append(line, '\n')
	_ = p.sock.SetDeadline(time.Now().Add(handOverWait))
	defer func() { _ = p.sock.SetDeadline(time.Time{}) }()

	_, err := p.sock.Write(line)
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
	s.refill()
	return s
}

// take returns the ready spare, or nil, and starts the next one.
func (s *Spares) take() *spawned {
	s.mu.Lock()
	p := s.ready
	s.ready = nil
	s.mu.Unlock()

	s.refill()
	if p != nil && !p.alive() {
		_ = p.sock.Close()
		return nil
	}

	return p
}

// refill starts a spare in the background unless one is ready or on its way.
func (s *Spares) refill() {
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
// RunDir once it has made RunDir/monitor.log its stdout and stderr. An error (EOF: the
// daemon is gone) means there is no container to serve.
func awaitRunDir(startup *os.File) (string, error) {
	line, err := bufio.NewReader(startup).ReadBytes('\n')
	if err != nil {
		return "", err
	}

	var a assign
	err = json.Unmarshal(line, &a)
	if err != nil {
		return "", fmt.Errorf("reading the run dir: %w", err)
	}

	if !filepath.IsAbs(a.RunDir) {
		return "", errors.New("the run dir is not an absolute path")
	}

	logf, err := os.OpenFile(filepath.Join(a.RunDir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("opening monitor log: %w", err)
	}

	defer func() { _ = logf.Close() }()

	for _, fd := range []int{1, 2} {
		err = unix.Dup3(int(logf.Fd()), fd, 0)
		if err != nil {
			return "", fmt.Errorf("redirecting output to the monitor log: %w", err)
		}
	}

	_, err = startup.Write(line)
	if err != nil {
		return "", fmt.Errorf("answering the daemon: %w", err)
	}

	return a.RunDir, nil
}
