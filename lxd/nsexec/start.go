package nsexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// startTimeout bounds everything between spawning the helper and the
// command's exec; the container could otherwise stall us (a frozen cgroup,
// a hostile /dev/ptmx).
const startTimeout = 10 * time.Second

// Options describe one command to run in a container.
type Options struct {
	Exe     string // the daemon's sealed binary (sys.SealedSelfExe)
	InitPID int    // host pid of the container's init: whose namespaces to join

	// Prepare runs with the helper's host pid before it joins the
	// namespaces and forks; it places it in the container's cgroups.
	Prepare func(pid int) error

	Command []string
	Env     []string // complete; HOME and USER are added from /etc/passwd if missing
	UID     uint32
	GID     uint32
	Cwd     string // "" means the user's home

	// Seccomp is the container's seccomp program (confine.Filter), loaded
	// right before the command's credentials are set; nil: none.
	Seccomp []byte

	// PTY asks for a terminal allocated inside the container; Process.PTY
	// is its master. Otherwise Stdin, Stdout and Stderr are the command's
	// stdio (nil: /dev/null).
	PTY           bool
	Width, Height uint16
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
}

// ExecError is a command that could not be started inside the container;
// Code is the exit code LXD reports for it (127 not found, 126 not
// executable, 1 otherwise).
type ExecError struct {
	Code int
	Msg  string
}

func (e *ExecError) Error() string { return e.Msg }

// Start runs o.Command in the container and returns once it has been
// exec'd (or with an *ExecError if that failed inside the container).
func Start(o Options) (*Process, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("no command")
	}

	cfg, err := json.Marshal(config{Command: o.Command, Env: o.Env, UID: o.UID, GID: o.GID, Cwd: o.Cwd,
		PTY: o.PTY, Width: o.Width, Height: o.Height})
	if err != nil {
		return nil, err
	}

	if len(cfg) > maxConfig {
		return nil, fmt.Errorf("command and environment exceed %d bytes", maxConfig)
	}

	cmd, sock, err := spawnHelper(o.Exe, o.InitPID, o.Seccomp, []string{"berth-exec", HelperArg}, nil, func(cmd *exec.Cmd) {
		// With a pty B replaces all three. A nil *os.File must stay a nil
		// interface: os/exec would start a copying goroutine for it.
		if o.PTY {
			return
		}

		if o.Stdin != nil {
			cmd.Stdin = o.Stdin
		}

		if o.Stdout != nil {
			cmd.Stdout = o.Stdout
		}

		if o.Stderr != nil {
			cmd.Stderr = o.Stderr
		}
	})
	if err != nil {
		return nil, err
	}

	defer func() { _ = sock.Close() }()

	p, err := handshake(cmd, sock, o, cfg)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		return nil, err
	}

	return p, nil
}

// handshake walks A and B through the protocol in nsexec.go.
func handshake(cmd *exec.Cmd, sock *os.File, o Options, cfg []byte) (*Process, error) {
	_ = sock.SetDeadline(time.Now().Add(startTimeout))

	if o.Prepare != nil {
		err := o.Prepare(cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
	}

	_, err := sock.Write(header{Magic: magic, Version: version, PidFD: 4, NSFlags: Namespaces}.bytes())
	if err == nil {
		_, err = sock.Write(cfg)
	}

	if err != nil {
		return nil, fmt.Errorf("sending exec config: %w", err)
	}

	b, _, err := recv(sock)
	if err != nil {
		return nil, fmt.Errorf("reading exec helper reply: %w", err)
	}

	r, err := parseReply(b)
	if err != nil {
		return nil, err
	}

	// A exits right after replying, in both cases.
	_ = cmd.Wait()

	if r.PID <= 0 {
		return nil, r.err()
	}

	// B is our child (CLONE_PARENT) and unreaped, so its pid cannot be
	// reused before FindProcess takes a pidfd on it.
	proc, err := os.FindProcess(int(r.PID))
	if err != nil {
		return nil, fmt.Errorf("finding exec'd process: %w", err)
	}

	p := &Process{pid: proc.Pid, proc: proc}

	err = p.finishStart(sock)
	if err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		p.closePTY()

		return nil, err
	}

	return p, nil
}

// finishStart reads B's messages until exec closes the socket.
func (p *Process) finishStart(sock *os.File) error {
	for {
		b, fds, err := recv(sock)
		if errors.Is(err, io.EOF) {
			return nil // exec succeeded: the socket was close-on-exec
		}

		if err != nil {
			return fmt.Errorf("waiting for exec: %w", err)
		}

		var st status

		err = json.Unmarshal(b, &st)
		if err != nil {
			closeAll(fds)
			return fmt.Errorf("decoding exec helper status: %w", err)
		}

		switch {
		case st.Error != "":
			closeAll(fds)
			_, _ = p.proc.Wait()

			return &ExecError{Code: st.Code, Msg: st.Error}
		case st.PTY && len(fds) == 1 && p.pty == nil:
			// Non-blocking, so the runtime poller serves it and Close
			// interrupts a pending Read.
			_ = unix.SetNonblock(fds[0], true)
			p.pty = os.NewFile(uintptr(fds[0]), "pty-master")
		default:
			closeAll(fds)
			return fmt.Errorf("unexpected exec helper message %q", b)
		}
	}
}

// recv reads one message and any fds passed with it; io.EOF once every
// other end is closed.
func recv(sock *os.File) ([]byte, []int, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, nil, err
	}

	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))

	var n, oobn int

	var rerr error

	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}

	if err != nil {
		return nil, nil, err
	}

	var fds []int

	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, m := range msgs {
				f, err := unix.ParseUnixRights(&m)
				if err == nil {
					fds = append(fds, f...)
				}
			}
		}
	}

	if n == 0 && len(fds) == 0 {
		return nil, nil, io.EOF
	}

	return buf[:n], fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
