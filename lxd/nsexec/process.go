package nsexec

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a command running inside a container. Signals go through a
// pidfd, so they can never hit a recycled pid.
type Process struct {
	proc *os.Process

	mu  sync.Mutex
	pty *os.File // master, nil without a pty; nil again after closePTY
}

// Pid is the command's pid on the host.
func (p *Process) Pid() int { return p.proc.Pid }

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
func (p *Process) Signal(sig syscall.Signal) error { return p.proc.Signal(sig) }

// Kill sends SIGKILL.
func (p *Process) Kill() error { return p.proc.Kill() }

// Wait reaps the command and returns its exit code as LXD reports it: the
// status, or 128+N when killed by signal N.
func (p *Process) Wait() (int, error) {
	st, err := p.proc.Wait()
	if err != nil {
		return -1, err
	}

	ws, ok := st.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}

	return st.ExitCode(), nil
}
