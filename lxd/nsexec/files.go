package nsexec

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/fileio"
)

// A container's file server does the files API's work in a running container (push,
// pull, delete, mkdir, listing, symlinks) as the container's root: the kernel, not the
// daemon, decides what it may open. It is started like the exec server (the C constructor
// joins the namespaces, in "serve" mode: no fork), but joins only the user and mount
// namespaces, stays in the daemon's cgroups, and then becomes the container's root for
// good, every thread of it. It outlives its requests (a push costs a connection, not a
// process start) until the daemon closes it or the container's init exits.
//
// In the server: fd 3 is the control socket, fd 4 a pidfd of init, fd 5 an O_PATH fd of
// the host's /proc (the container's procfs does not show this process, and fileio reopens
// its own fds through /proc/self/fd).

// FilesArg is the hidden subcommand of a file server.
const FilesArg = "__files"

// filesNamespaces are what a file server joins: enough for paths and permissions to be
// the container's.
const filesNamespaces = unix.CLONE_NEWUSER | unix.CLONE_NEWNS

// FileServer is the daemon's end of a container's file server.
type FileServer struct {
	*fileio.Client
	pid     int
	initPID int
	ctrl    *os.File
	done    chan struct{}
}

// StartFileServer starts the file server of the container whose init is initPID (with the
// daemon's sealed binary exe) and returns once it serves.
func StartFileServer(exe string, initPID int) (*FileServer, error) {
	proc, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /proc: %w", err)
	}

	defer func() { _ = proc.Close() }()

	cmd, sock, err := spawnHelper(exe, initPID, nil, []string{"berth-files", FilesArg}, []*os.File{proc}, nil)
	if err != nil {
		return nil, err
	}

	err = filesHandshake(sock)
	if err != nil {
		_ = sock.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		return nil, err
	}

	s := &FileServer{Client: fileio.NewClient(sock), pid: cmd.Process.Pid, initPID: initPID, ctrl: sock, done: make(chan struct{})}

	go func() {
		_ = cmd.Wait()
		_ = sock.Close()
		close(s.done)
	}()

	return s, nil
}

func filesHandshake(sock *os.File) error {
	_ = sock.SetDeadline(time.Now().Add(startTimeout))
	defer func() { _ = sock.SetDeadline(time.Time{}) }()

	return serveHandshake(sock, filesNamespaces, "file server")
}

// Pid is the server's host pid.
func (s *FileServer) Pid() int { return s.pid }

// InitPID is the pid of the init whose container the server serves.
func (s *FileServer) InitPID() int { return s.initPID }

// Done is closed once the server is gone.
func (s *FileServer) Done() <-chan struct{} { return s.done }

// Close ends the server; operations under way fail.
func (s *FileServer) Close() { _ = s.ctrl.Close() }

// isFiles reports whether args ask for a file server.
func isFiles(args []string) bool { return len(args) > 1 && args[1] == FilesArg }

// filesMain is the file server: the constructor has joined the container's user and mount
// namespaces ("/" and the cwd are the container's root).
func filesMain() int {
	sock, err := strconv.Atoi(os.Getenv(envFD))
	if err != nil || sock < 3 {
		fmt.Fprintln(os.Stderr, "berth file server: not started by the daemon")
		return 2
	}

	const initFD, procFD = 4, 5

	fail := func(err error) int {
		b, _ := json.Marshal(event{Kind: eventFailed, Error: err.Error(), Code: 1})
		_ = unix.Sendmsg(sock, b, nil, nil, unix.MSG_NOSIGNAL)
		return 1
	}

	// Every thread becomes the container's root (the C library passes the change on to
	// all of them): what the kernel checks from here on is the container's root, which
	// has every capability in its own user namespace and none over the host's files.
	err = syscall.Setgroups([]int{})
	if err == nil {
		err = syscall.Setresgid(0, 0, 0)
	}

	if err == nil {
		err = syscall.Setresuid(0, 0, 0)
	}

	if err != nil {
		return fail(fmt.Errorf("becoming the container's root: %w", err))
	}

	// A change of credentials may make the process dumpable again.
	err = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fail(fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err))
	}

	// The server ends with its container.
	go func() {
		for {
			fds := []unix.PollFd{{Fd: initFD, Events: unix.POLLIN}}
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}

			os.Exit(0)
		}
	}()

	b, _ := json.Marshal(event{Kind: eventReady})
	err = unix.Sendmsg(sock, b, nil, nil, unix.MSG_NOSIGNAL)
	if err != nil {
		return 1
	}

	err = fileio.Serve(sock, procFD)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth file server:", err)
		return 1
	}

	return 0
}
