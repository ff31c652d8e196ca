package nsexec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a command running inside a container, started by Start (a
// child of the daemon) or by a Server (a child of the server, which reports
// its exit). Signals go through a pidfd, so they can never hit a recycled
// pid.
type Process struct {
	pid  int
	proc *os.Process // Start's; nil for a served process

	exit chan int // a served process's raw wait status; closed if the server went first

	mu    sync.Mutex
	pidfd *os.File // a served process's; nil once it was reaped
	pty   *os.File // master, nil without a pty; nil again after closePTY
}

// newServedProcess is the process of a started event: fds are its pidfd
// and, with a pty, the master.
func newServedProcess(ev event, fds []int) *Process {
	p := &Process{pid: ev.PID, exit: make(chan int, 1)}

	if len(fds) > 0 {
		p.pidfd = os.NewFile(uintptr(fds[0]), "pidfd")
	}

	if ev.PTY && len(fds) > 1 {
		// Non-blocking, so the runtime poller serves it and Close
		// interrupts a pending Read.
		_ = unix.SetNonblock(fds[1], true)
		p.pty = os.NewFile(uintptr(fds[1]), "pty-master")
	}

	closeAll(fds[min(len(fds), 2):])

	return p
}

// Pid is the command's pid on the host.
func (p *Process) Pid() int { return p.pid }

// PTY is the terminal's master (nil without a pty). The caller reads and
// writes it, and closes it with ClosePTY.
func (p *Process) PTY() *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.pty
}

// ClosePTY closes the master.
func (p *Process) ClosePTY() { p.closePTY() }

func (p *Process) closePTY() {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.pty != nil {
		_ = p.pty.Close()
		p.pty = nil
	}
}

// Resize sets the terminal size; without a pty it does nothing.
func (p *Process) Resize(width, height int) error {
	m := p.PTY()
	if m == nil {
		return nil
	}

	if width <= 0 || height <= 0 || width > 0xffff || height > 0xffff {
		return fmt.Errorf("invalid terminal size %dx%d", width, height)
	}

	return unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
}

// Signal delivers sig to the command. After it was reaped this is a no-op
// error (os.ErrProcessDone).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.proc != nil {
		return p.proc.Signal(sig)
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	if p.pidfd == nil {
		return os.ErrProcessDone
	}

	err := unix.PidfdSendSignal(int(p.pidfd.Fd()), sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return os.ErrProcessDone
	}

	return err
}

// Kill sends SIGKILL.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Wait reaps the command and returns its exit code as LXD reports it: the
// status, or 128+N when killed by signal N.
func (p *Process) Wait() (int, error) {
	var ws syscall.WaitStatus

	if p.proc != nil {
		st, err := p.proc.Wait()
		if err != nil {
			return -1, err
		}

		ws, _ = st.Sys().(syscall.WaitStatus)
	} else {
		status, ok := <-p.exit

		p.mu.Lock()
		if p.pidfd != nil {
			_ = p.pidfd.Close()
			p.pidfd = nil
		}
		p.mu.Unlock()

		if !ok {
			return -1, fmt.Errorf("waiting for command: %w", ErrServerGone)
		}

		ws = syscall.WaitStatus(status)
	}

	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}

	return ws.ExitStatus(), nil
}
