package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/lxd/session"
)

// Exec runs a fake command (fakeCommands) in a goroutine with the stdio
// the handler gives, as nsexec runs a real one: it owns copies of the
// handler's ends, a terminal is a socket pair, and an unknown command fails
// to start with exit code 127.
func (f *fakeInstances) Exec(ctx context.Context, name string, a session.ExecArgs) (execProcess, error) {
	_, err := f.ExecEnv(ctx, name, nil, a.UID)
	if err != nil {
		return nil, err
	}

	run, ok := fakeCommands[a.Command[0]]
	if !ok {
		return nil, &nsexec.ExecError{Code: 127, Msg: fmt.Sprintf("exec %q: no such file or directory", a.Command[0])}
	}

	p := &fakeProcess{
		args:   a.Command[1:],
		events: make(chan fakeEvent, 64),
		killed: make(chan struct{}),
		done:   make(chan struct{}),
	}

	if a.PTY {
		err = p.openTerminal()
	} else {
		err = p.openStdio(a.Stdin, a.Stdout, a.Stderr)
	}

	if err != nil {
		p.closeFiles()
		return nil, err
	}

	go func() {
		p.code = run(p)
		p.closeFiles()
		close(p.done)
	}()

	return p, nil
}

// fakeEvent is a control message as the command sees it.
type fakeEvent struct {
	width, height int // a resize when non-zero
	signal        int
}

// fakeProcess is a running fake command.
type fakeProcess struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	master *os.File // interactive: the handler's end of the terminal

	mu    sync.Mutex
	files []*os.File // the command's ends

	events   chan fakeEvent
	killed   chan struct{}
	killOnce sync.Once
	done     chan struct{}
	code     int
}

// openStdio takes copies of the handler's ends: it closes its own once
// Exec returns.
func (p *fakeProcess) openStdio(files ...*os.File) error {
	for _, f := range files {
		c, err := dupFile(f)
		if err != nil {
			return err
		}

		p.files = append(p.files, c)
	}

	p.stdin, p.stdout, p.stderr = p.files[0], p.files[1], p.files[2]

	return nil
}

// openTerminal connects the command to a socket pair standing for a pty:
// one stream both ways, stdout and stderr merged.
func (p *fakeProcess) openTerminal() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}

	p.master = os.NewFile(uintptr(fds[0]), "fake-pty-master")
	slave := os.NewFile(uintptr(fds[1]), "fake-pty-slave")
	p.files = []*os.File{slave}
	p.stdin, p.stdout, p.stderr = slave, slave, slave

	return nil
}

func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}

	var fd int

	var dupErr error

	err = rc.Control(func(orig uintptr) { fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) })
	if err == nil {
		err = dupErr
	}

	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}

	return os.NewFile(uintptr(fd), f.Name()), nil
}

// closeFiles is the command's exit: its ends close, so the handler sees EOF.
func (p *fakeProcess) closeFiles() {
	p.mu.Lock()
	defer p.mu.Unlock()

	for _, f := range p.files {
		_ = f.Close()
	}

	p.files = nil
}

func (p *fakeProcess) PTY() *os.File { return p.master }

func (p *fakeProcess) ClosePTY() {
	if p.master != nil {
		_ = p.master.Close()
	}
}

func (p *fakeProcess) Resize(width, height int) error {
	p.send(fakeEvent{width: width, height: height})
	return nil
}

func (p *fakeProcess) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return p.Kill()
	}

	p.send(fakeEvent{signal: int(sig)})

	return nil
}

func (p *fakeProcess) send(ev fakeEvent) {
	select {
	case p.events <- ev:
	default:
	}
}

// Kill ends the command as SIGKILL would: its files close under it.
func (p *fakeProcess) Kill() error {
	p.killOnce.Do(func() {
		close(p.killed)
		p.closeFiles()
	})

	return nil
}

func (p *fakeProcess) Wait() (int, error) {
	<-p.done

	select {
	case <-p.killed:
		return 128 + int(syscall.SIGKILL), nil
	default:
		return p.code, nil
	}
}

// waitEvent returns the next control event, or false when the command was
// killed or nothing came within 10 s.
func (p *fakeProcess) waitEvent() (fakeEvent, bool) {
	select {
	case ev := <-p.events:
		return ev, true
	case <-p.killed:
	case <-time.After(10 * time.Second):
	}

	return fakeEvent{}, false
}

// fakeCommands are the commands a fake instance has. Each returns its exit
// code; the tests name them in their requests.
var fakeCommands = map[string]func(p *fakeProcess) int{
	"true":  func(*fakeProcess) int { return 0 },
	"false": func(*fakeProcess) int { return 1 },
	"su":    func(*fakeProcess) int { return 0 },
	"sh":    func(*fakeProcess) int { return 0 },

	// cat copies stdin to stdout.
	"cat": func(p *fakeProcess) int {
		_, _ = io.Copy(p.stdout, p.stdin)
		return 0
	},
	"echo": func(p *fakeProcess) int {
		_, _ = fmt.Fprintln(p.stdout, strings.Join(p.args, " "))
		return 0
	},
	// exit N exits with N.
	"exit": func(p *fakeProcess) int {
		n, _ := strconv.Atoi(append(p.args, "0")[0])
		return n
	},
	// out-err N writes a line on each output stream and exits with N.
	"out-err": func(p *fakeProcess) int {
		_, _ = io.WriteString(p.stdout, "out\n")
		_, _ = io.WriteString(p.stderr, "err\n")
		n, _ := strconv.Atoi(append(p.args, "0")[0])

		return n
	},
	// tty-hello writes on stderr, which a terminal merges into its stream.
	"tty-hello": func(p *fakeProcess) int {
		_, _ = io.WriteString(p.stderr, "on the tty\r\n")
		return 0
	},
	// sleep runs until killed.
	"sleep": func(p *fakeProcess) int {
		<-p.killed
		return 137
	},
	// wait-signal reports the first signal it gets and dies of it.
	"wait-signal": func(p *fakeProcess) int {
		for {
			ev, ok := p.waitEvent()
			if !ok {
				return 137
			}

			if ev.signal != 0 {
				_, _ = fmt.Fprintf(p.stdout, "signal %d\n", ev.signal)
				return 128 + ev.signal
			}
		}
	},
	// wait-resize says it is ready, reports the first resize and exits 9.
	"wait-resize": func(p *fakeProcess) int {
		_, _ = io.WriteString(p.stdout, "ready\r\n")
		for {
			ev, ok := p.waitEvent()
			if !ok {
				return 1
			}

			if ev.width != 0 {
				_, _ = fmt.Fprintf(p.stdout, "resized %dx%d\r\n", ev.width, ev.height)
				return 9
			}
		}
	},
	// resize-echo: ready, the first resize, then three bytes of input, the
	// last of which is its exit code.
	"resize-echo": func(p *fakeProcess) int {
		_, _ = io.WriteString(p.stderr, "ready\r\n")

		ev, ok := p.waitEvent()
		if !ok {
			return 1
		}

		_, _ = fmt.Fprintf(p.stdout, "window-resize %dx%d\r\n", ev.width, ev.height)

		buf := make([]byte, 3)

		_, err := io.ReadFull(p.stdin, buf)
		if err != nil {
			return 1
		}

		_, _ = fmt.Fprintf(p.stdout, "got %q\r\n", buf)

		return int(buf[2])
	},
}
